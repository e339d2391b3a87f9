// Package fleetapi serves and calls fleet's v1 HTTP API, so that an
// unmodified fleetctl v1.0.0 drives an atoll cluster with --endpoint, and
// atoll's own CLI drives it through Client.
//
// The Server reads and writes the registry (package registry) and
// decides nothing else: scheduling is the engine's, running units the
// agents'. It imports the registry, the unit parser, the wire types
// (package schema), the journal's types and pki; it must not import the
// engine, the agent or the CLI.
//
// # Routes
//
// Under /fleet/v1 and, as fleet mounts them, /v1-alpha (coreos/fleet:
// api/mux.go); every answer carries "Server: fleetd/<Options.Version>":
//
//	GET    /units[?nextPageToken=]      200 UnitPage, units sorted by name
//	GET    /units/{name}                200 Unit; 404
//	PUT    /units/{name}                201 created or file replaced; 204 desired state set;
//	                                    415 Content-Type not application/json;
//	                                    400 bad JSON, body name differs from the URL's,
//	                                        invalid name (ValidateName), invalid options,
//	                                        invalid desiredState, activating a template;
//	                                    409 unit does not exist and options field empty,
//	                                        existing unit without desiredState;
//	                                    413 body over 4 MiB or unit file over 1 MiB
//	DELETE /units/{name}                204; 404
//	GET    /state[?machineID=&unitName=&nextPageToken=]
//	                                    200 UnitStatePage, sorted by unit then machine
//	GET    /state/{name}                200 UnitState (fleet's undocumented route); 404
//	GET    /machines[?nextPageToken=]   200 MachinePage, sorted by ID
//	PATCH  /machines                    204; 400 bad JSON, op, path or value
//	GET    /discovery                   200 fleet's discovery document; any other method 400
//	GET    /units/{name}/journal        atoll's extension, below
//
// A wrong method on a route is 405; GET / and GET /fleet/v1 are 405 and
// any other path 404, as in fleet. Refusals are {"error":{"code":N,
// "message":"..."}}. While Options.Registry fails (the store is not
// reachable yet) every request is 503. A failing registry call is 500.
//
// PUT follows fleet's order (coreos/fleet: api/units.go): a unit that
// does not exist is created from its options, with the desired state
// given or inactive; one whose options hash differently is replaced the
// same way; otherwise only the desired state changes, and must be given.
// Options are checked by atoll's parser, unit.FromOptions then
// (*unit.File).Fleet, which refuses what fleet's ValidateOptions refuses.
//
// PATCH /machines takes fleet's JSON-patch subset: ops add, replace and
// remove on /<machine>/metadata/<key>, with the value as fleet's code
// reads it, "value":{"value":"x"}, or as its documentation shows it,
// "value":"x". Every operation is checked before any is applied.
//
// # Pagination
//
// A page token is base64url (padded) of two little-endian uint16s, the
// page size and the 1-based page (coreos/fleet: api/pagination.go). The
// size must be Options.TokenLimit (default 100, fleet's token_limit) and
// the page at least 1, or the request is 400. Each call re-reads the
// whole list. As in fleet, a page that ends exactly at the end of the
// list names a next page, which is empty.
//
// # What a Unit says
//
// The API's Unit is derived from one registry snapshot (deriveUnit):
//
//   - desiredState is the operator's; options are the stored file's, in
//     order.
//   - machineID is the machine of the unit's one schedule entry; a unit
//     with none, or with two while the engine moves it, shows none.
//   - currentState is the state that machine's agent reports having
//     reached (loaded or launched) for the file the schedule placed
//     there (the report's hash equals the placement's); inactive
//     otherwise: not scheduled, not yet reported, or reported for
//     another file.
//   - A global unit shows no machine and currentState inactive, as
//     fleet's unit list shows one: fleet never targets a global unit at
//     a machine, so its derived job state stays inactive (coreos/fleet:
//     registry/job_state.go). Where it runs is in /state.
//   - reason, atoll's field, is the engine's reason for not placing the
//     unit, when it concerns the unit's current file.
//
// # Journal
//
// GET /fleet/v1/units/{name}/journal?lines=N&follow=1[&machine=ID]
// streams a unit's journal, one journald-style JSON object per line
// (application/x-ndjson), as atoll's local API does: the last N entries
// (all without lines), then with follow=1 new ones until the client goes.
// The journal read is the one of the machine the unit is scheduled on,
// or of machine= (needed for a global unit on several machines). On this
// machine (Options.MachineID) it is Options.Journal (nil: 501).
// Elsewhere the request goes to that machine's API at its
// registry.Machine.APIURL, under /fleet/v1, with Options.PeerClient, and
// the answer streams back as it comes; the request names the machine and
// is marked, so the peer serves it itself and never passes it on. 404
// for an unknown unit, 409 for a unit not scheduled (or on several
// machines, without machine=), 502 when the machine is gone, serves no
// API or cannot be reached, 400 for a bad lines or follow.
//
// # Where atoll differs from fleet
//
//   - The discovery document names the address the request came to
//     where fleet sent "$ENDPOINT" as it was.
//   - A 500 says what failed; fleet's said nothing. The 503 adds why the
//     store is not reachable to fleet's message.
//   - An invalid desiredState is 400 (fleet answered 500 when creating
//     and stored it as it was when updating); activating a template is
//     refused when creating too; options that replace a unit's file are
//     checked like a new unit's (fleet checked only new units').
//   - Bodies and unit files are bounded (413).
//   - GET /units/{global} shows currentState inactive, as the list does;
//     fleet's GET of one global unit left it out.
//   - GET /state/{name} gives the first machine's report, where fleet
//     read a legacy one-per-unit copy.
//   - Removing operator metadata uncovers the value the machine
//     registered with, if any (the registry's merge); fleet's remove
//     hid it. Removing a key that is not set is 204, as in fleet.
//   - A page far past the end is empty; fleet's 16-bit arithmetic
//     wrapped round.
//   - No /metrics.
//   - currentState follows the agents at once, where fleetd's agents
//     heard of a change a second late. fleetctl v1.0.0's restart of a
//     launched unit relied on that lag (it asks for loaded, then waits
//     for currentState launched, then asks for launched): atoll's agents
//     let a stop of a running unit settle for a second (agent.StopSettle)
//     and turn a start asked meanwhile into one restart, so fleetctl's
//     restart works and restarts the unit, which fleetd's often did not.
//
// The journal route, Unit.reason and TLS are atoll's; fleet had no
// authentication. On TCP the daemon serves the API with its machine
// certificate (pki.Files.ServerTLS) and requires client certificates
// signed by the cluster CA, TLS 1.2 or later.
package fleetapi
