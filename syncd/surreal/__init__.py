"""The one door to SurrealDB: connections, error translation, the CBOR codec and the server dialect. Nothing outside this folder (and syncd/dev) imports `surrealdb`."""
