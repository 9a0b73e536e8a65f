// Where a server listens, as the program, its dynamic providers, the tests and the drill pass
// it around. Types only: nothing here is serialized into a provider.

/** A host (an address or a name) and a TCP port. */
export interface Endpoint {
    host: string;
    port: number;
}

/** The Redis or the Sentinel of one of our nodes: an endpoint with the node's name. */
export interface NodeEndpoint extends Endpoint {
    name: string;
}
