"""The bus: NATS JetStream, the one replayable log every service publishes to and reads from.

- ``jetstream``    connection, the stream and dead-letter stream as code, subjects, partitions
- ``connection``   the connection and subject matching alone (the replay's reader process)
- ``pulling``      pipelined pull requests on one inbox (live consumers and replays read so)
- ``consumer``     the consumer framework: durable pull consumers, exactly once in effect
- ``deadletters``  what a consumer could not apply: read, replay once, drop
"""
