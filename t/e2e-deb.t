#!/bin/bash
# e2e-deb.t - the Debian package (make deb) in a fresh Debian 12 root: it
# installs, bsd-mailx and cron come in after it without any other MTA,
# `mail -s` there delivers to a test MX, the cron.d line runs the queue
# (and does nothing where systemd runs), a reinstall keeps queued mail and
# repairs the queue's modes, a purge keeps a queue that holds mail and says
# so, and removes an empty one.  lintian finds no error in the package.
#
# The root is a minbase made by mmdebstrap from the host's Debian mirror,
# with the .debs of the package's dependencies, bsd-mailx and cron
# downloaded into its apt cache (apt resolves against the archive's lists
# as they were, then installs without the network).  The tarball is cached
# as $CACHE/bookworm-KEY.tar, KEY a hash of the host's Debian sources and
# the package list: the first run takes one to three minutes more.
#
# Two parts: this script first builds the package and the cached root with
# the host's network (skipping only when no mirror answers), then runs
# itself again in a private mount and network namespace with its own
# loopback, where the servers listen and the root is chrooted into.
# Address 127.0.0.244 (in that namespace).

CACHE=${MXSEND_DEB_CACHE:-/var/cache/mxsend-test/deb-root}
SUITE=bookworm

# ---- first part: the package and the root's tarball, with the network --------

# fail_early WHAT LOG - a failed preparation as a failed test
fail_early() {
	echo "1..1"
	echo "not ok 1 - $1"
	[ -f "$2" ] && tail -n 30 "$2" | sed 's/^/# /' >&2
	exit 1
}

# debian_sources - the host's apt source files for $SUITE
debian_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	    /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] &&
		    grep -Eq "^[^#]*[[:space:]]$SUITE([[:space:]]|\$)" "$f" &&
		    echo "$f"
	done
}

# mirror_answers URI - an HTTP answer (any status) from the mirror
mirror_answers() {
	/usr/bin/python3 - "$1/dists/$SUITE/InRelease" <<'EOF'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"),
                           timeout=15)
except urllib.error.HTTPError:
    pass
except Exception as e:
    print(e)
    sys.exit(1)
EOF
}

# make_root TARBALL LIST SOURCES... - the cached root, made once
make_root() {
	local tar=$1 list=$2 uri why new=$CACHE/new-$$.tar
	shift 2
	uri=$(sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
	    -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' \
	    "$@" | head -n 1)
	why=$(mirror_answers "$uri") || {
		echo "1..0 # SKIP mmdebstrap cannot reach the mirror $uri: $why"
		exit 0
	}
	echo "# making the Debian 12 root once (cached as $tar)" >&2
	# shellcheck disable=SC2016
	mmdebstrap --variant=minbase --aptopt='Acquire::Languages "none"' \
	    --skip=cleanup/apt/lists,cleanup/apt/cache \
	    --customize-hook='chroot "$1" apt-get clean' \
	    --customize-hook="chroot \"\$1\" apt-get install -y -q --download-only $list" \
	    --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
	    "$SUITE" "$new" "$@" >"$CACHE/mmdebstrap.log" 2>&1 || {
		rm -rf "$new"
		fail_early "mmdebstrap made the root" "$CACHE/mmdebstrap.log"
	}
	rm -f "$CACHE"/"$SUITE"-*.tar
	mv "$new" "$tar"
}

if [ -z "${MXSEND_DEB_INNER:-}" ]; then
	[ -f t/lib.sh ] || { echo "Bail out! run tests from the repository root"; exit 255; }
	[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root: chroot, mounts, dpkg"; exit 0; }
	for tool in mmdebstrap dpkg-buildpackage dh lintian unshare; do
		command -v $tool >/dev/null ||
		    { echo "Bail out! no $tool: run sh .ci/deps"; exit 255; }
	done
	mkdir -p "$CACHE"
	log=$CACHE/make-deb.log
	make -s deb >"$log" 2>&1 || fail_early "make deb" "$log"
	deb=$(ls dist/mxsend_*.deb)
	# the package's dependencies (first alternatives, no versions)
	deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
	    sed 's/|.*//; s/(.*//; s/[[:space:]]//g' | grep . | sort -u)
	list=$(echo $deps bsd-mailx cron)
	mapfile -t sources < <(debian_sources)
	[ ${#sources[@]} -gt 0 ] ||
	    { echo "1..0 # SKIP no Debian $SUITE mirror in /etc/apt/sources.list*"; exit 0; }
	key=$( { echo "minbase 1 $list"; cat "${sources[@]}"; } | sha256sum | cut -c1-16)
	tarball=$CACHE/$SUITE-$key.tar
	exec 9>"$CACHE/lock"
	flock 9
	[ -f "$tarball" ] || make_root "$tarball" "$list" "${sources[@]}"
	flock -u 9
	exec 9>&-
	export MXSEND_DEB_INNER=1 DEB="$deb" TARBALL="$tarball"
	exec unshare --mount --net --propagation private "$0"
fi

# ---- second part: in its own namespaces ----------------------------------------

. t/lib.sh
need_tools
ip link set lo up || { echo "Bail out! no loopback in the namespace"; exit 255; }

R=$T/root
PKG=/tmp/$(basename "$DEB")
SPOOL=$R/var/spool/mxsend

# in_root CMD... - CMD in the root, as root, in /, with a clean environment
in_root() {
	timeout -k 5 180 chroot "$R" /usr/bin/env -i -C / \
	    PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
	    DEBIAN_FRONTEND=noninteractive "$@"
}

# queue_one RCPT SUBJECT BODY NAME - a message queued in the root with
# sendmail -odq (the test NAME: exit 0, the only message queued); its
# file's name in $qid, its checksum in $qsum
queue_one() {
	printf 'Subject: %s\n\n%s\n' "$2" "$3" |
	    in_root sendmail -odq "$1" 2>"$T/q.err"
	is "$?:$(spool_msgs | wc -l)" 0:1 "$4"
	qid=$(spool_msgs)
	qsum=$(cat "$SPOOL/$qid" | sha256sum)
}
# spool_msgs - the queued messages' files in the root, by name
spool_msgs() { (cd "$SPOOL" 2>/dev/null && ls -1 -- *.msg 2>/dev/null); }

# modes PATH... - "OWNER:GROUP MODE" of each path in the root
modes() { in_root stat -c '%U:%G %a' "$@"; }

# test_conf - the root's /etc/mxsend.conf, keys appended for this test's
# DNS server and MX
test_conf() {
	printf '%s\n' "hostname test.example" "dns_server 127.0.0.1:$DNSPORT" \
	    "smtp_port $SMTP_PORT" "tls none" "connect_timeout 5s" \
	    >>"$R/etc/mxsend.conf"
}

_unmount_root() {
	local m
	for m in dev/null dev/zero dev/full dev/random dev/urandom dev/tty \
	    dev/pts dev proc run; do
		mountpoint -q "$R/$m" && umount -l "$R/$m"
	done
	return 0
}
at_exit _unmount_root

mkdir -p "$R"
tar -x --numeric-owner --exclude='./dev/*' -f "$TARBALL" -C "$R" ||
    { echo "Bail out! cannot unpack $TARBALL"; exit 255; }
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755,size=1m mxsend-dev "$R/dev"
for n in null zero full random urandom tty; do
	: >"$R/dev/$n"
	mount --bind "/dev/$n" "$R/dev/$n"
done
ln -s /proc/self/fd "$R/dev/fd"
mkdir "$R/dev/pts"		# apt's terminal log wants one
mount -t devpts -o newinstance,ptmxmode=0666 mxsend-pts "$R/dev/pts" &&
    ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=0755,size=1m mxsend-run "$R/run"
# no service starts in the root
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
cp "$DEB" "$R$PKG"
chmod 644 "$R$PKG"

MX=127.0.0.244		# deb.test
start_dns_mx deb.test=$MX || exit 1
start_smtpd $MX || exit 1

# --- the package file ---------------------------------------------------------------
is "$(ls dist)" "mxsend_$(sed -n 's/^#define MXSEND_VERSION "\(.*\)"$/\1/p' mxsend.h)-1_$(dpkg --print-architecture).deb" \
    "make deb: one file in dist/, mxsend_VERSION-1_ARCH.deb"
is "$(dpkg-deb -f "$DEB" Provides Conflicts Replaces)" "Provides: mail-transport-agent
Conflicts: mail-transport-agent
Replaces: mail-transport-agent" "control: Provides, Conflicts and Replaces mail-transport-agent"
lintian "$DEB" >"$T/lintian.out" 2>&1
is "$(grep -c '^E:' "$T/lintian.out")" 0 "lintian: no error" || diag_file "$T/lintian.out"
diag "lintian: $(grep -c '^W:' "$T/lintian.out") warning(s)"

# --- install into the root ------------------------------------------------------------
in_root apt-get install -y -q "$PKG" >"$T/install.out" 2>&1
is "$?" 0 "apt-get install ./mxsend.deb in a Debian 12 minbase" || diag_file "$T/install.out"
is "$(modes /usr/sbin/sendmail /var/spool/mxsend /var/spool/mxsend/tmp)" "root:mail 2755
root:mail 2770
root:mail 2770" "sendmail root:mail 2755; the queue and its tmp/ root:mail 2770"
is "$(in_root readlink /usr/bin/mailq /usr/sbin/newaliases /usr/lib/sendmail)" "../sbin/sendmail
sendmail
../sbin/sendmail" "mailq, newaliases and /usr/lib/sendmail link to sendmail"
is "$(in_root sh -c 'ls /usr/share/man/man8/sendmail.8.gz; readlink /usr/share/man/man1/mailq.1.gz /usr/share/man/man8/newaliases.8.gz')" \
    "/usr/share/man/man8/sendmail.8.gz
../man8/sendmail.8.gz
sendmail.8.gz" "man pages: sendmail.8, mailq.1 and newaliases.8 lead to it"
is "$(in_root dpkg-query -W -f='${Conffiles}\n' mxsend | awk 'NF { print $1 }' | sort)" \
    "/etc/cron.d/mxsend
/etc/mxsend.conf" "conffiles: /etc/mxsend.conf and /etc/cron.d/mxsend"
is "$(grep -v '^#' "$R/etc/mxsend.conf" | grep -c .)" 0 \
    "/etc/mxsend.conf: nothing but comments"
# conf.c's table of keys: { "key", set_..., ...
keys=$(sed -n 's/^[[:space:]]*{ "\([a-z_]*\)", set_.*/\1/p' conf.c | sort)
is "$(for k in $keys; do grep -q "^#$k[[:space:]]" "$R/etc/mxsend.conf" || echo "$k"; done)" "" \
    "/etc/mxsend.conf: every key of conf.c there, commented out"
like "$keys" '^aliases$' "conf.c's keys found"
is "$(readlink "$R/etc/systemd/system/timers.target.wants/mxsend-queue.timer")" \
    /lib/systemd/system/mxsend-queue.timer "mxsend-queue.timer installed and enabled"
ok '[ -f "$R/lib/systemd/system/mxsend-queue.service" ]' "mxsend-queue.service installed"
is "$(in_root mailq)" "Mail queue is empty" "mailq (by its name) lists the empty queue"

# --- bsd-mailx and cron: no other MTA ----------------------------------------------------
in_root apt-get install -y -q bsd-mailx cron >"$T/mailx.out" 2>&1
is "$?" 0 "apt-get install bsd-mailx cron" || diag_file "$T/mailx.out"
is "$(in_root dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' bsd-mailx cron mxsend)" "ii bsd-mailx
ii cron
ii mxsend" "bsd-mailx, cron and mxsend installed"
is "$(in_root dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' |
    awk -F'|' '$1 ~ /^[hi]i/ && ($3 ~ /mail-transport-agent/ || $2 ~ /^(exim|postfix|sendmail|nullmailer|dma$|msmtp-mta|opensmtpd|ssmtp|courier-mta|citadel|esmtp)/) { print $2 }')" \
    mxsend "no MTA but mxsend installed (no exim4, postfix, ...)"
is "$(in_root dpkg -S /usr/sbin/sendmail)" "mxsend: /usr/sbin/sendmail" \
    "/usr/sbin/sendmail is still mxsend's"

# --- mail -s delivers ------------------------------------------------------------------------
test_conf
printf 'Hello from the package.\n.\nlast line\n' >"$T/m1.body"
in_root mail -s 'deb test' user@deb.test <"$T/m1.body" >"$T/m1.out" 2>&1
is "$?" 0 "mail -s in the root exits 0" || diag_file "$T/m1.out"
ok 'wait_for "[ \$(rx_count $MX) = 1 ]" 20' "mail -s: the message reaches the MX (-odb)"
f=$(rx_last $MX)
is "$(rx_env "$f")" "MAIL FROM:<root@test.example>
RCPT TO:<user@deb.test>" "mail -s: envelope: root, qualified with hostname; the recipient"
is "$(hdr "$f" Subject)
$(hdr "$f" To)" "Subject: deb test
To: user@deb.test" "mail -s: Subject: and To:"
to_crlf <"$T/m1.body" >"$T/m1.want"
rx_body "$f" >"$T/m1.got"
is_file "$T/m1.got" "$T/m1.want" "mail -s: body byte for byte (the lone \".\" too)"
ok 'wait_for "[ -z \"\$(spool_msgs)\" ]"' "mail -s: the queue is empty after delivery"

# --- reinstall with mail in the queue ----------------------------------------------------------
queue_one kept@deb.test kept "queued across a reinstall" \
    "sendmail -odq: one message queued"
id1=$qid sum1=$qsum
like "$(in_root mailq)" "^${id1%.msg} " "mailq lists the queued message"
chmod 0700 "$SPOOL/tmp"
in_root dpkg -i "$PKG" >"$T/re.out" 2>&1
is "$?" 0 "dpkg -i again: the reinstall succeeds" || diag_file "$T/re.out"
is "$(spool_msgs)" "$id1" "reinstall: the queued message is still there"
is "$(cat "$SPOOL/$id1" | sha256sum)" "$sum1" "reinstall: its file unchanged"
is "$(modes /usr/sbin/sendmail /var/spool/mxsend /var/spool/mxsend/tmp)" "root:mail 2755
root:mail 2770
root:mail 2770" "reinstall: modes set again (tmp/ had been made 0700)"
is "$(grep -c "^dns_server 127.0.0.1:$DNSPORT\$" "$R/etc/mxsend.conf")" 1 \
    "reinstall: the administrator's /etc/mxsend.conf kept"

# --- the cron.d line -----------------------------------------------------------------------------
line=$(grep -v '^#' "$R/etc/cron.d/mxsend" | grep '^\*/5')
cmd=$(printf '%s\n' "$line" | awk -F'\t' '{ print $3 }')
is "$(printf '%s\n' "$line" | awk -F'\t' '{ print $1 "|" $2 }')" "*/5 * * * *|root" \
    "cron.d: every 5 minutes, as root"
mkdir -p "$R/run/systemd/system"
in_root sh -c "$cmd" >"$T/cron1.out" 2>&1
is "$?:$(spool_msgs)" "0:$id1" "cron.d command where systemd runs: does nothing"
rmdir "$R/run/systemd/system"
in_root sh -c "$cmd" >"$T/cron2.out" 2>&1
is "$?" 0 "cron.d command without systemd: sendmail -q exits 0" || diag_file "$T/cron2.out"
is "$(rx_count $MX)" 2 "cron.d command: the queued message delivered"
f=$(rx_last $MX)
is "$(rx_env "$f")" "MAIL FROM:<root@test.example>
RCPT TO:<kept@deb.test>" "cron.d command: its envelope"
is "$(rx_body "$f")" "queued across a reinstall"$'\r' "cron.d command: its body"
is "$(spool_msgs)" "" "cron.d command: the queue is empty"
# the line outlives the package (a conffile): with another sendmail in
# its place it must not run that one's queue
mv "$R/usr/sbin/sendmail" "$R/usr/sbin/sendmail.mxsend"
printf '#!/bin/sh\necho "$*" >>/tmp/other-mta.log\n' >"$R/usr/sbin/sendmail"
chmod 755 "$R/usr/sbin/sendmail"
rm -f "$R/tmp/other-mta.log"
in_root sh -c "$cmd" >"$T/cron3.out" 2>&1
is "$?:$(cat "$R/tmp/other-mta.log")" "0:--version" \
    "cron.d command with another sendmail: asks its version, runs no queue"
mv "$R/usr/sbin/sendmail.mxsend" "$R/usr/sbin/sendmail"

# --- purge with mail in the queue, install again, purge an empty queue -------------------------
queue_one purge@deb.test purge "queued across a purge" \
    "sendmail -odq: another message queued"
id2=$qid sum2=$qsum
in_root apt-get purge -y -q mxsend bsd-mailx >"$T/purge1.out" 2>&1
is "$?" 0 "apt-get purge mxsend with a message queued" || diag_file "$T/purge1.out"
like "$(cat "$T/purge1.out")" "mxsend: /var/spool/mxsend still holds 1 message\(s\), so it was not removed" \
    "purge: says the queue is kept, and why"
is "$(spool_msgs):$(cat "$SPOOL/$id2" | sha256sum)" "$id2:$sum2" \
    "purge: the queue and its message kept"
ok '[ ! -e "$R/usr/sbin/sendmail" ] && [ ! -e "$R/etc/mxsend.conf" ] && [ ! -e "$R/etc/cron.d/mxsend" ]' \
    "purge: the program, the configuration and the cron.d entry gone"
in_root apt-get install -y -q "$PKG" >"$T/install2.out" 2>&1
is "$?" 0 "install again after the purge" || diag_file "$T/install2.out"
is "$(in_root mailq | grep -c "^${id2%.msg} ")" 1 "install again: mailq lists the kept message"
test_conf
in_root sendmail -q >"$T/q3.out" 2>&1
is "$(rx_count $MX):$(rx_env "$(rx_last $MX)" | tail -n 1)" "3:RCPT TO:<purge@deb.test>" \
    "install again: sendmail -q delivers the kept message"
in_root apt-get purge -y -q mxsend >"$T/purge2.out" 2>&1
is "$?" 0 "apt-get purge mxsend with an empty queue" || diag_file "$T/purge2.out"
ok '[ ! -e "$SPOOL" ]' "purge: the empty queue removed"
ok '! grep -q "still holds" "$T/purge2.out"' "purge: nothing said about a kept queue"

done_testing
