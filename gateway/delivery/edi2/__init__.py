"""EDI 2.0: NHN's Meldingstjener REST API (v2) with HelseID DPoP tokens, as a second transport beside AMQP."""
