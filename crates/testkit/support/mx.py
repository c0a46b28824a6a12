"""A recipient MX for tests, on aiosmtpd: a real SMTP server whose answers
are scripted by the recipient's local part.

  defer*    → 451 4.2.0 (temporary)
  unknown*  → 550 5.1.1 (no such user)
  blocked*  → 554 5.7.1 (listed on a blocklist)
  toolong*  → accepted at RCPT, then DATA is answered as aiosmtpd answers
              a line over its limit: 500 Line too long.
  anything else is accepted, and the message is written to OUT_DIR.

It offers PIPELINING (RFC 2920), as most MXes do; aiosmtpd reads
commands one line at a time, so pipelined ones are answered in order.

Usage: mx.py PORT OUT_DIR [--no-pipelining]. Prints READY when listening.
"""
import os
import sys
import time

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out_dir, pipelining):
        self.out_dir = out_dir
        self.pipelining = pipelining
        self.n = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("defer"):
            return "451 4.2.0 Mailbox busy, try again later"
        if local.startswith("unknown"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("blocked"):
            return "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.split("@")[0].lower().startswith("toolong") for r in envelope.rcpt_tos):
            return "500 Line too long."
        self.n += 1
        path = os.path.join(self.out_dir, "%06d.eml" % self.n)
        with open(path + ".tmp", "wb") as f:
            f.write(("X-Envelope-From: %s\r\n" % envelope.mail_from).encode())
            f.write(("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as %06d" % self.n


def main():
    port, out_dir = int(sys.argv[1]), sys.argv[2]
    pipelining = "--no-pipelining" not in sys.argv[3:]
    controller = Controller(Handler(out_dir, pipelining), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
