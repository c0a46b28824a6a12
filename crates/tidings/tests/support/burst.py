"""Submit a burst of messages over SMTP (STARTTLS + AUTH) from several
connections at once, recording each message that got 250 in ACCEPTED and
each refused one in REFUSED. Connections that die (the server was killed)
just end their thread.

Usage: burst.py HOST PORT KEY THREADS PER_THREAD ACCEPTED REFUSED
"""
import smtplib
import ssl
import sys
import threading

host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
threads, per_thread = int(sys.argv[4]), int(sys.argv[5])
accepted_path, refused_path = sys.argv[6], sys.argv[7]
lock = threading.Lock()
accepted = open(accepted_path, "a", buffering=1)
refused = open(refused_path, "a", buffering=1)


def worker(t):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        s = smtplib.SMTP(host, port, timeout=30)
        s.ehlo()
        s.starttls(context=ctx)
        s.ehlo()
        s.login("apikey", key)
        for i in range(per_thread):
            subject = "burst-%d-%d" % (t, i)
            if i == 3:
                # Malformed (no From header): must be refused, never delivered.
                msg = "To: r@example.test\r\nSubject: %s\r\n\r\nbad\r\n" % subject
            else:
                msg = "From: app@sender.test\r\nTo: r@example.test\r\nSubject: %s\r\n\r\n%s" % (subject, ("x" * 99 + "\r\n") * 20)
            try:
                s.sendmail("app@sender.test", ["r@example.test"], msg)
                with lock:
                    accepted.write(subject + "\n")
            except smtplib.SMTPDataError as e:
                with lock:
                    refused.write("%s %d\n" % (subject, e.smtp_code))
    except (OSError, smtplib.SMTPException):
        return


ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for th in ts:
    th.start()
for th in ts:
    th.join()
print("DONE", flush=True)
