"""The hub link: Phoenix framing, the channel, the transport and the client that owns them."""
