"""What syncd knows about the SurrealDB servers it talks to, by server generation (2.x, 3.x)."""
