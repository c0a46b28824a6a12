"""Schemathesis hooks for tidings: raw messages (`message/rfc822`) are sent
as the text generated for them, like `text/plain`."""

import schemathesis

schemathesis.serializer.alias("message/rfc822", "text/plain")
