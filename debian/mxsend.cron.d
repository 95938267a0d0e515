# /etc/cron.d/mxsend - run the mail queue every 5 minutes where systemd
# does not run (containers, other init systems); under systemd the
# mxsend-queue.timer does it and this line does nothing.  The file is a
# conffile and outlives a removal of the package: the line also does
# nothing when /usr/sbin/sendmail is no longer mxsend.
SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin

*/5 * * * *	root	[ -d /run/systemd/system ] || ! /usr/sbin/sendmail --version 2>/dev/null | grep -q '^mxsend ' || /usr/sbin/sendmail -q
