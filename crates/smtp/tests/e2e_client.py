"""A real SMTP client (Python's smtplib) for the end-to-end tests.

Usage: e2e_client.py PORT IMPLICIT_TLS_PORT SCENARIO (the inbound scenario
ignores IMPLICIT_TLS_PORT)
Prints one JSON object with what the client saw. The server's certificate
is self-signed, so verification is off.
"""
import base64
import json
import smtplib
import socket
import ssl
import sys

HOST = "127.0.0.1"
USER = "app@example.com"
PASS = "s3cret pass"


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def tls_session(port):
    s = smtplib.SMTP(HOST, port, timeout=20)
    s.ehlo("client.test")
    s.starttls(context=ctx())
    s.ehlo("client.test")
    return s


def starttls_plain(port, _):
    s = tls_session(port)
    features = sorted(s.esmtp_features)
    s.login(USER, PASS)  # PLAIN: smtplib's first choice among those offered
    msg = (
        "From: Jörg <jörg@example.com>\r\n"
        "To: zoë@example.org\r\n"
        "Subject: Grüße aus Köln\r\n"
        "\r\n"
        "Schöne Grüße.\r\n"
        ".leading dot\r\n"
    ).encode("utf-8")
    refused = s.sendmail("jörg@example.com", ["zoë@example.org", "b@example.org"], msg,
                         mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    s.quit()
    return {"features": features, "refused": refused}


def starttls_login(port, _):
    s = tls_session(port)
    s.user, s.password = USER, PASS
    code, text = s.auth("LOGIN", s.auth_login)
    s.sendmail(USER, ["a@example.org"], b"Subject: login\r\n\r\nvia AUTH LOGIN\r\n")
    s.quit()
    return {"auth": code}


def auth_before_tls(port, _):
    s = smtplib.SMTP(HOST, port, timeout=20)
    s.ehlo("client.test")
    offered = s.has_extn("auth")
    resp = base64.b64encode(f"\0{USER}\0{PASS}".encode()).decode()
    code, text = s.docmd("AUTH", "PLAIN " + resp)
    mail = s.mail(USER)
    s.quit()
    return {"offered": offered, "code": code, "text": text.decode(), "mail": mail[0]}


def wrong_password(port, _):
    s = tls_session(port)
    try:
        s.login(USER, "wrong")
        return {"code": 235}
    except smtplib.SMTPAuthenticationError as e:
        return {"code": e.smtp_code, "text": e.smtp_error.decode()}


def unauthenticated_mail(port, _):
    s = tls_session(port)
    code, text = s.mail(USER)
    rcpt = s.rcpt("a@example.org")
    s.quit()
    return {"code": code, "text": text.decode(), "rcpt": rcpt[0]}


def oversize(port, _):
    big = b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 2000
    s = tls_session(port)
    s.login(USER, PASS)
    declared = None
    try:
        s.sendmail(USER, ["a@example.org"], big)  # declares SIZE=
    except smtplib.SMTPSenderRefused as e:
        declared = e.smtp_code
    s.rset()
    s.mail(USER)  # no SIZE: the server only learns at the end of DATA
    s.rcpt("a@example.org")
    code, text = s.data(big)
    after = s.noop()[0]
    s.quit()
    return {"declared": declared, "code": code, "text": text.decode(), "after": after}


def too_many_recipients(port, _):
    s = tls_session(port)
    s.login(USER, PASS)
    rcpts = [f"r{i}@example.org" for i in range(5)]
    refused = s.sendmail(USER, rcpts, b"Subject: many\r\n\r\nhi\r\n")
    s.quit()
    return {"refused": {k: [v[0], v[1].decode()] for k, v in refused.items()}}


def read_replies(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    replies, current = [], []
    for line in data.decode().split("\r\n"):
        if len(line) < 3:
            continue
        current.append(line)
        if len(line) == 3 or line[3] == " ":
            replies.append(int(line[:3]))
            current = []
    return replies


def pipelined_garbage(port, _):
    sock = socket.create_connection((HOST, port), timeout=20)
    sock.sendall(b"EHLO client.test\r\nGARBAGE\r\nNOOP\r\n\x01\x02\x03\r\nMAIL FROM:<a@example.com>\r\nHELP\r\nQUIT\r\n")
    return {"replies": read_replies(sock)}


def disconnect_mid_data(port, _):
    s = tls_session(port)
    s.login(USER, PASS)
    s.mail(USER)
    s.rcpt("a@example.org")
    s.putcmd("DATA")
    code, _ = s.getreply()
    s.send(b"Subject: cut\r\n\r\nthe first half of a message\r\n")
    s.sock.close()  # no QUIT, no end of data
    return {"data": code}


def implicit_tls(_, tls_port):
    s = smtplib.SMTP_SSL(HOST, tls_port, timeout=20, context=ctx())
    s.ehlo("client.test")
    starttls = s.has_extn("starttls")
    s.login(USER, PASS)
    s.sendmail(USER, ["a@example.org"], b"Subject: 465\r\n\r\nimplicit TLS\r\n")
    s.quit()
    return {"starttls": starttls}


DSN = (
    b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
    b"To: b-msg1=rcpt.example.org@bounces.test\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
    b"\r\n"
    b"--B\r\n"
    b"\r\n"
    b".a line that starts with a dot\r\n"
    b"--B\r\n"
    b"Content-Type: message/delivery-status\r\n"
    b"\r\n"
    b"Reporting-MTA: dns; mx.example.org\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; rcpt@example.org\r\n"
    b"Action: failed\r\n"
    b"Status: 5.1.1\r\n"
    b"--B--\r\n"
)


def inbound_bounce(port, _):
    """An MTA's bounce: MAIL FROM:<> without AUTH, to a VERP address (and
    to a foreign one, which must be refused); then again over STARTTLS."""
    s = smtplib.SMTP(HOST, port, timeout=20)
    s.ehlo("mx.example.org")
    features = sorted(s.esmtp_features)
    refused = s.sendmail("", ["b-msg1=rcpt.example.org@bounces.test", "someone@example.com"], DSN)
    try:
        s.sendmail("", ["postmaster@example.net"], DSN)
        foreign_only = None
    except smtplib.SMTPRecipientsRefused as e:
        foreign_only = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}
    auth = s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{USER}\0{PASS}".encode()).decode())[0]
    s.starttls(context=ctx())
    s.ehlo("mx.example.org")
    tls_features = sorted(s.esmtp_features)
    s.sendmail("", ["b-msg2=other.example.org@bounces.test"], DSN)
    s.quit()
    return {
        "features": features,
        "tls_features": tls_features,
        "refused": {k: [v[0], v[1].decode()] for k, v in refused.items()},
        "foreign_only": foreign_only,
        "auth": auth,
    }


if __name__ == "__main__":
    port, tls_port, scenario = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    print(json.dumps(globals()[scenario](port, tls_port)))
