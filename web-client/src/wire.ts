// The room's wire format: MessagePack maps with named fields, one message per binary frame
// (docs/protocol.md). The message types come from the Rust protocol crate.
import { decode, encode } from "@msgpack/msgpack";
import type { ClientMsg } from "@protocol/ClientMsg";
import type { ServerMsg } from "@protocol/ServerMsg";

export const SUBPROTOCOL_MSGPACK = "lecture-room.v2.msgpack";

/** A client message, numbered (`id`) when the client tracks it until acknowledged. */
export function encodeClient(msg: ClientMsg | (ClientMsg & { id: number })): Uint8Array {
  // Optional fields left undefined are omitted, not sent as nil.
  return encode(msg, { ignoreUndefined: true });
}

/** A server frame, or null when it is not a message this client understands. */
export function decodeServer(data: ArrayBuffer | Uint8Array): ServerMsg | null {
  try {
    const value = decode(data instanceof Uint8Array ? data : new Uint8Array(data));
    if (typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string") {
      return value as ServerMsg;
    }
  } catch {
    // Fall through: a frame the client cannot read is ignored, not fatal.
  }
  return null;
}

/** The room or check socket's URL for a path on this page's server. */
export function socketUrl(path: string, location: { protocol: string; host: string } = window.location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
