#!/usr/bin/env bash
# A private Postfix instance for the sending benchmarks, in its own
# directory (config, queue, data, log), so /etc/postfix is left alone.
#
#   postfix.sh setup DIR PORT hold            # accept on 127.0.0.1:PORT, park every message in the hold queue
#   postfix.sh setup DIR PORT relay SINKPORT  # accept, and relay everything to 127.0.0.1:SINKPORT
#   postfix.sh start DIR | stop DIR | count DIR | flush DIR
#
# Needs root and Debian's `postfix` package (3.7): apt-get install postfix.
# Durability: Postfix's cleanup fsyncs the queue file before smtpd answers
# 250, the same promise tidings makes with storage.durability = full.
set -euo pipefail

cmd=${1:?usage}; dir=${2:?usage}
conf="$dir/conf"

case "$cmd" in
setup)
    port=${3:?port}; mode=${4:?hold|relay}; sink=${5:-}
    if [ -f "$conf/main.cf" ]; then "$0" stop "$dir" || true; fi
    rm -rf "$dir"; mkdir -p "$conf" "$dir/queue" "$dir/data"
    chown postfix "$dir/data"
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 30 \
        -keyout "$conf/key.pem" -out "$conf/cert.pem" 2>/dev/null
    cp /etc/postfix/master.cf.proto "$conf/master.cf" 2>/dev/null || cp /etc/postfix/master.cf "$conf/master.cf"
    cat >"$conf/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $conf
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydomain = localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtpd_peername_lookup = no
biff = no
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
smtpd_tls_security_level = may
smtpd_tls_cert_file = $conf/cert.pem
smtpd_tls_key_file = $conf/key.pem
smtp_tls_security_level = none
message_size_limit = 26214400
EOF
    case "$mode" in
    hold)
        # Every message is parked in the hold queue: acceptance only.
        echo "smtpd_recipient_restrictions = check_client_access static:HOLD, permit" >>"$conf/main.cf" ;;
    relay)
        echo "relayhost = [127.0.0.1]:${sink:?sink port}" >>"$conf/main.cf"
        echo "default_destination_concurrency_limit = 20" >>"$conf/main.cf" ;;
    *) echo "mode: hold or relay" >&2; exit 2 ;;
    esac
    # No chroot (Debian's master.cf.proto says n already; make sure), the
    # SMTP listener on 127.0.0.1:PORT, and postlogd for maillog_file.
    postconf -c "$conf" -F '*/*/chroot = n'
    postconf -c "$conf" -MX smtp/inet
    postconf -c "$conf" -M "127.0.0.1:$port/inet = 127.0.0.1:$port inet n - n - - smtpd"
    postconf -c "$conf" -M "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"
    script -eqc "postfix -c $conf check" /dev/null
    ;;
start) script -eqc "postfix -c $conf start" /dev/null ;;
stop) postfix -c "$conf" stop || true
    # Wait for the master to go.
    for _ in $(seq 50); do [ -f "$dir/queue/pid/master.pid" ] && kill -0 "$(cat "$dir/queue/pid/master.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done ;;
count)
    # Messages in each queue.
    for q in incoming active deferred hold; do
        printf '%s %s\n' "$q" "$(find "$dir/queue/$q" -type f 2>/dev/null | wc -l)"
    done ;;
flush) postsuper -c "$conf" -d ALL >/dev/null 2>&1 || true ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
