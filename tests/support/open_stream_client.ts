/**
 * A client process that opens one ext_proc stream on the socket given as its argument,
 * sends request headers, prints "open" once answered and then keeps the stream open: a
 * peer that tests can freeze (SIGSTOP) to stand in for a vanished Envoy.
 */
import { ExtProcClient, requestHeaders } from "./extproc_client.ts";

const client = new ExtProcClient(`unix:${Deno.args[0]}`);
const stream = client.open();
await stream.exchange(requestHeaders(Deno.args[1], "/held-open"));
console.log("open");
await new Promise(() => {});
