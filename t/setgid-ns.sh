# t/setgid-ns.sh - the setgid install in a private mount namespace, for the
# tests that attack it as an ordinary user (bash; source it first thing,
# before t/lib.sh):
#   . t/setgid-ns.sh		# re-executes the script in the namespace
#   . t/lib.sh
#   setgid_ns_setup		# make install, the mounts, the checks
#   ... start servers (setgid_ns_remote ADDR: the usual remote.test),
#   CONF=/etc/mxsend.conf write_conf "queue_dir $Q" ...
#   setgid_ns_done		# the host is unchanged (one test), then done_testing
#
# The runs as a user must use the default /etc/mxsend.conf and queue
# /var/spool/mxsend (-C and MXSEND_CONFIG drop the setgid right), so the
# script re-executes itself in a private mount namespace (unshare -m) where
#   /var/spool  is a bind mount of $T/inst/var/spool (make install
#               DESTDIR=$T/inst made the queue there),
#   /var/mail   is a bind mount of $T/mail (root:mail 2775, as Debian's),
#   /etc        is an overlay: the host's /etc read-only below, $T/etc-upper
#               above, so /etc/mxsend.conf exists in the namespace only.
# Every file the test makes is under $T (removed at exit); the mounts die
# with the namespace, and nothing is mounted under $T, so removing $T
# cannot reach the host's files.  Before any mxsend run the mounts are
# checked, and setgid_ns_done compares the host's /etc, /var/spool and
# /var/mail with how they were, through descriptors opened before the
# mounts.
#
# It gives SM (the installed sendmail), Q (the queue), the users' helpers
# asnobody/asdaemon/asroot (each under a 60 s timeout), qids, qcount,
# perms, qenv ID, rx_last_env ADDR.

if [ "${MXSEND_SETGID_NS:-}" != 1 ]; then
	_ns_skip() { echo "1..0 # SKIP $*"; exit 0; }
	[ "$(id -u)" = 0 ] || _ns_skip "needs root (setgid install, setpriv, mounts)"
	command -v setpriv >/dev/null || _ns_skip "no setpriv"
	# ASan cannot read its options in a setgid process (/proc/self/environ
	# is root's then) and LeakSanitizer cannot run there (no ptrace).
	grep -qa __asan_init sendmail 2>/dev/null &&
	    _ns_skip "a sanitizer build cannot run setgid"
	unshare -m --propagation private true 2>/dev/null ||
	    _ns_skip "cannot make a mount namespace (unshare -m)"
	MXSEND_SETGID_NS=1 exec unshare -m --propagation private /bin/bash "$0" "$@"
	echo "Bail out! cannot run unshare"
	exit 255
fi

Q=/var/spool/mxsend

# setgid_ns_setup - make install into $T/inst, the mounts, their checks
setgid_ns_setup() {
	need_tools
	getent group mail >/dev/null || skip_all "no group mail"
	for u in nobody daemon bin; do
		id "$u" >/dev/null 2>&1 || skip_all "no user $u"
	done
	findmnt -no OPTIONS -T "$T" | grep -qw nosuid && skip_all "$T is mounted nosuid"

	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -o sendmail install \
	    DESTDIR="$T/inst" PREFIX=/usr >"$T/install.err" 2>&1 ||
	    { diag_file "$T/install.err"; echo "Bail out! make install failed"; exit 255; }
	SM=$T/inst/usr/sbin/sendmail
	[ -u "$SM" ] && { echo "Bail out! setuid sendmail"; exit 255; }
	[ -g "$SM" ] || { echo "Bail out! no setgid sendmail"; exit 255; }

	exec 17</etc 18</var/spool 19</var/mail
	_ns_host_state >"$T/host.before"
	mkdir -p "$T/mail" "$T/etc-upper" "$T/etc-work"
	chown root:mail "$T/mail"
	chmod 2775 "$T/mail"		# as Debian's /var/mail
	mount --bind "$T/inst/var/spool" /var/spool &&
	    mount --bind "$T/mail" /var/mail ||
	    { echo "Bail out! cannot bind-mount /var/spool, /var/mail"; exit 255; }
	mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/etc-upper,workdir=$T/etc-work" \
	    /etc 2>"$T/mount.err" || skip_all "no overlayfs for /etc: $(cat "$T/mount.err")"
	: >/etc/.mxsend-setgid-probe
	[ /var/spool -ef "$T/inst/var/spool" ] && [ /var/mail -ef "$T/mail" ] &&
	    [ -e "$T/etc-upper/.mxsend-setgid-probe" ] &&
	    [ ! -e /proc/$$/fd/17/.mxsend-setgid-probe ] ||
	    { echo "Bail out! the namespace's mounts are not in place"; exit 255; }
	rm -f /etc/.mxsend-setgid-probe
}

_ns_host_state() {
	local d=/proc/$$/fd
	ls -A "$d/17/mxsend.conf" 2>&1 | sed "s|$d/17|/etc|"
	echo "/var/spool: $(ls -A "$d/18" | tr '\n' ' ')"
	echo "/var/spool/mxsend: $(ls -A "$d/18/mxsend" 2>&1 | tr '\n' ' ')"
	echo "/var/mail: $(ls -A "$d/19" | tr '\n' ' ')"
}

# setgid_ns_done - one test: the host's files are as they were; done_testing
setgid_ns_done() {
	_ns_host_state >"$T/host.after"
	is_file "$T/host.after" "$T/host.before" \
	    "the host's /etc/mxsend.conf, /var/spool, /var/spool/mxsend, /var/mail: unchanged"
	done_testing
}

# setgid_ns_remote ADDR - remote.test's MX, mx.remote.test, is a t/smtpd.py
# on ADDR that takes everything (DNS for it too); exits when either fails
setgid_ns_remote() {
	start_dns --mx-host=remote.test,mx.remote.test,10 \
	    --host-record=mx.remote.test,"$1" || exit 1
	start_smtpd "$1" || exit 1
}

asnobody() { timeout -k 5 60 setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
asdaemon() { timeout -k 5 60 setpriv --reuid=daemon --regid=daemon --clear-groups "$@"; }
asroot() { timeout -k 5 60 "$@"; }
qids() { ls "$Q" | sed -n 's/\.msg$//p'; }
qcount() { qids | wc -l | tr -d ' '; }
perms() { stat -c '%U:%G %a' "$@" | tr '\n' ' ' | sed 's/ $//'; }
# qenv ID - the current envelope (ID.env, or the one at the end of ID.msg)
qenv() {
	local m=$Q/$1.msg off
	if [ -f "$Q/$1.env" ]; then
		cat "$Q/$1.env"
	else
		off=$(tail -c 32 "$m" | sed -n 's/^mxsend-env 0*\([0-9]\)/\1/p')
		tail -c +"$(( ${off:-0} + 1 ))" "$m" | head -c -32
	fi
}
# rx_last_env ADDR - the envelope of the last transaction a server took
rx_last_env() { f=$(rx_last "$1"); [ -n "$f" ] && rx_env "$f"; }
