"""Salesforce's Pub/Sub API protocol, vendored: `pubsub_api.proto` from forcedotcom/pub-sub-api (CC0 1.0,
see LICENSE here) and the stubs grpcio-tools generated from it (`make pubsub-stubs`; README.md here).

There is no maintained official Python client, so the Salesforce change stream
(`connectors.salesforce.cdc`) speaks the protocol through these stubs, and the sandbox serves it with the
same generated servicer (`sandbox.salesforce.pubsub`). Nothing here is edited by hand.
"""
