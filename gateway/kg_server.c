/* kg_server.c - not yet written. */
typedef int kg_unused_kg_server;
