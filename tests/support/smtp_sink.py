"""A real SMTP server for the tests (aiosmtpd): every message it takes is written to the folder
given as one JSON file (sender, recipients, decoded subject and plain-text body), renamed into
place once whole so a reader never sees half a message.

    python3 smtp_sink.py PORT FOLDER [DELAY_SECONDS]

With a delay, each message is answered that long after it arrived: a slow server, so that
senders racing for one message are sending at the same time.
"""

import asyncio
import email
import email.policy
import json
import os
import sys
import uuid

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, folder, delay):
        self.folder = folder
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "body": body.get_content() if body is not None else "",
        }
        name = uuid.uuid4().hex
        partial = os.path.join(self.folder, f".{name}.part")
        with open(partial, "w", encoding="utf-8") as out:
            json.dump(record, out, ensure_ascii=False)
        os.rename(partial, os.path.join(self.folder, f"{name}.json"))
        return "250 Message accepted"


async def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(folder, delay)), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
