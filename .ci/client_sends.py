"""A client generated from tidings' OpenAPI document (the package
`tidings_client`, made by openapi-python-client) sends a message and reads
it back. Arguments: the API's base URL and an API key."""

import sys

from tidings_client import AuthenticatedClient
from tidings_client.api.domains import add_domain
from tidings_client.api.messages import get_message, send_message
from tidings_client.models import Accepted, DomainInput, MessageView, SendRequest, TrackInput

base, key = sys.argv[1], sys.argv[2]
client = AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)

# Mail goes out only from the account's own sending domains.
added = add_domain.sync_detailed(client=client, body=DomainInput(domain="example.com"))
assert added.status_code in (201, 409), (added.status_code, added.content)

request = SendRequest(
    from_="App <app@example.com>",
    to=["a@example.com", "b@example.com"],
    subject="Hello from the generated client",
    text="Hello.",
    tags=["generated-client"],
    track=TrackInput(opens=False, clicks=True),
)
sent = send_message.sync_detailed(client=client, body=request)
assert sent.status_code == 202, (sent.status_code, sent.content)
accepted = sent.parsed
assert isinstance(accepted, Accepted), accepted
assert accepted.id.startswith("msg_"), accepted.id
assert sorted(r.email for r in accepted.recipients) == ["a@example.com", "b@example.com"]

got = get_message.sync_detailed(accepted.id, client=client)
assert got.status_code == 200, (got.status_code, got.content)
message = got.parsed
assert isinstance(message, MessageView), message
assert message.id == accepted.id
assert message.subject == "Hello from the generated client"
assert message.tags == ["generated-client"]
assert (message.track.opens, message.track.clicks) == (False, True)
assert sorted(r.email for r in message.recipients) == ["a@example.com", "b@example.com"]
print(f"generated client: sent {accepted.id} to {len(accepted.recipients)} recipients and read it back")
