// The console's "call on by nickname" box: a combobox suggesting the nicknames the console knows
// (staff get every occupant's) as one types; arrow keys choose a suggestion, Enter takes it, and
// Enter again (or the button) calls.
import type { ClientMsg } from "@protocol/ClientMsg";
import { useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import { suggestNicknames } from "./callNames";
import type { Refused } from "./refused";
import { type RoomState, seatAt } from "./state";

export function CallBox({
  state,
  send,
  refused = null,
}: {
  state: RoomState;
  send: (m: ClientMsg) => boolean;
  /** The command the node refused last: a refused call's nickname comes back. */
  refused?: Refused;
}) {
  const [name, setName] = useState("");
  useEffect(() => {
    const command = refused?.command;
    if (command?.type === "call_on" && command.nickname) {
      const nickname = command.nickname;
      setName((now) => (now.trim() === "" ? nickname : now));
    }
  }, [refused?.command.id]);
  const [active, setActive] = useState(-1);
  const [open, setOpen] = useState(false);
  const suggestions = open ? suggestNicknames(state.names, name).filter((s) => s.nickname !== name.trim()) : [];
  const pick = (nickname: string) => {
    setName(nickname);
    setActive(-1);
    setOpen(false);
  };
  const seatName = (seat: number) => {
    const s = seatAt(seat, state.lecture.cols);
    return t("seat_name", { row: s.row + 1, col: s.col + 1 });
  };
  return (
    <form
      class="row call-box"
      onSubmit={(e) => {
        e.preventDefault();
        const nickname = name.trim();
        if (nickname && send({ type: "call_on", nickname })) {
          setName("");
          setOpen(false);
        }
      }}
    >
      <label for="call-input" class="visually-hidden">
        {t("console_call_input")}
      </label>
      <div class="combo">
        <input
          id="call-input"
          role="combobox"
          autoComplete="off"
          aria-autocomplete="list"
          aria-expanded={suggestions.length > 0}
          aria-controls="call-suggestions"
          aria-activedescendant={active >= 0 && suggestions[active] ? `call-suggestion-${active}` : undefined}
          value={name}
          maxLength={40}
          placeholder={t("console_call_input")}
          onInput={(e) => {
            setName((e.currentTarget as HTMLInputElement).value);
            setActive(-1);
            setOpen(true);
          }}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
          onKeyDown={(e) => {
            if (e.key === "ArrowDown" && suggestions.length > 0) {
              e.preventDefault();
              setActive((active + 1) % suggestions.length);
            } else if (e.key === "ArrowUp" && suggestions.length > 0) {
              e.preventDefault();
              setActive(active <= 0 ? suggestions.length - 1 : active - 1);
            } else if (e.key === "Enter" && active >= 0 && suggestions[active]) {
              e.preventDefault();
              pick(suggestions[active].nickname);
            } else if (e.key === "Escape") {
              setOpen(false);
            }
          }}
        />
        <ul id="call-suggestions" role="listbox" class="suggestions" aria-label={t("console_call_suggestions")} hidden={suggestions.length === 0}>
          {suggestions.map((s, i) => (
            <li
              key={s.seat}
              id={`call-suggestion-${i}`}
              role="option"
              aria-selected={i === active}
              class={i === active ? "active" : undefined}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(s.nickname);
              }}
            >
              <span class="nick">{s.nickname}</span> <span class="where">{seatName(s.seat)}</span>
            </li>
          ))}
        </ul>
      </div>
      <button type="submit">{t("console_call_button")}</button>
    </form>
  );
}
