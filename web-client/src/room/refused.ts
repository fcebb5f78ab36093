// What the node refused last, and the typed text that goes back where it was typed.
import type { UnsentLine } from "./Chat";
import type { RoomConnection } from "./connection";

export type Refused = RoomConnection["refused"];

/** Whether the refused command had typed text that was put back (a call by seat had none). */
export function keptText(refused: Refused): boolean {
  const c = refused?.command;
  return c?.type === "chat" || c?.type === "announce" || (c?.type === "call_on" && Boolean(c.nickname));
}

/** A refused chat line, to put back in the chat's input. */
export function refusedChat(refused: Refused): UnsentLine | null {
  const command = refused?.command;
  return command?.type === "chat" ? { id: command.id, text: command.text, question: command.question } : null;
}
