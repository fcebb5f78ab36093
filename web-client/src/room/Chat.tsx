// The chat: a list that draws only the rows in view (a lecture keeps up to a thousand lines and
// hundreds may be chatting), and the input. Nicknames and texts are JSX text, so HTML in them
// shows as typed and never runs.
//
// The list follows the newest line while it is scrolled to the bottom; scrolled up (or while a
// row or its menu has the keyboard), it stays where it is and a button counts the lines below.
// The list is one tab stop: arrow keys move between lines, Enter (or the menu key) opens a
// line's moderation menu for staff. Screen readers hear new lines through a separate polite
// region, at most one announcement every few seconds (the log itself is not live: 20 lines a
// second would drown everything else).
import type { ChatMessage } from "@protocol/ChatMessage";
import { memo } from "preact/compat";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { type Lang, formatTime, lang, t } from "../i18n";
import type { ChatLog } from "./chatlog";
import { type Anchor, RowHeights, anchorAt, atBottom, rowTops, rowWindow, scrollForAnchor } from "./windowing";

/** A line typed here that the node has not acknowledged yet. */
export interface UnsentLine {
  id: number;
  text: string;
  question: boolean;
  /** No connection to send it on yet: marked as waiting for the network, not as on its way. */
  offline?: boolean;
}

/** Staff's moderation of a line and its author. */
export interface Moderation {
  onDelete: (m: ChatMessage) => void;
  onAnswered: (m: ChatMessage) => void;
  onCallOn: (m: ChatMessage) => void;
  /** `seconds` null: until the lecture ends. */
  onMute: (m: ChatMessage, seconds: number | null) => void;
  onRemove: (m: ChatMessage, allowReturn: boolean) => void;
}

export interface ChatProps {
  messages: ChatLog;
  /** Lines typed here, not yet acknowledged: shown after the others as still being sent. */
  unsent: UnsentLine[];
  maxChars: number;
  mutedUntil: number | null;
  /** Sends (or queues until connected); false when it cannot take more (what was typed stays). */
  onSend: (text: string, question: boolean) => boolean;
  /** Staff only: one menu on each line. */
  moderation?: Moderation;
  canAsk: boolean;
  /** This person's id in the lecture: their own lines are not announced to them. */
  you?: string;
  /** A line the node refused: put back in the input (unless something new is being typed). */
  restore?: UnsentLine | null;
}

/** Height of a row not measured yet (one line of text and its meta line). */
const ROW_ESTIMATE = 52;
/** Rows drawn beyond each edge of the view. */
const OVERSCAN = 6;
/** At most one screen-reader announcement this often. */
export const ANNOUNCE_EVERY_MS = 5_000;
/** Mute lengths offered, minutes. */
export const MUTE_MINUTES = [1, 5, 15, 60];

type MenuView = "main" | "mute" | "remove";

export function Chat(props: ChatProps) {
  const { messages } = props;
  const log = useRef<HTMLDivElement>(null);
  const heights = useRef(new RowHeights(ROW_ESTIMATE));
  const [text, setText] = useState("");
  const [question, setQuestion] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [view, setView] = useState({ top: 0, height: 400 });
  /** Whether the list follows the newest line. */
  const [stuck, setStuck] = useState(true);
  /** The newest line seen while at the bottom: what the jump button counts from. */
  const seen = useRef<number>(messages.at(messages.length - 1)?.offset ?? 0);
  const anchor = useRef<Anchor | null>(null);
  /** The line with the keyboard's place (null: the newest). */
  const [active, setActive] = useState<number | null>(null);
  /** Whether the keyboard is in the list (then it holds still). */
  const [focused, setFocused] = useState(false);
  const focusNext = useRef(false);
  const [menu, setMenu] = useState<{ offset: number; view: MenuView; up: boolean } | null>(null);
  const [, remeasured] = useState(0);
  const moderation = useRef(props.moderation);
  moderation.current = props.moderation;

  const count = messages.length;
  const keyOf = (i: number) => messages.at(i)!.offset;
  const tops = rowTops(count, (i) => heights.current.get(keyOf(i)));
  const total = tops[count]!;
  /** Holding still: scrolled up, or the keyboard or a menu is in the list. */
  const following = stuck && !focused && menu === null;
  const top = following ? Math.max(0, total - view.height) : view.top;
  const win = rowWindow(tops, top, view.height, OVERSCAN);
  if (following) seen.current = messages.at(count - 1)?.offset ?? seen.current;
  const unseen = following ? 0 : countAfter(messages, seen.current);

  const activeIndex = active === null ? -1 : messages.indexOfOffset(active);
  // The one row in the tab order: the active row if drawn, else the newest row drawn.
  const tabRow =
    activeIndex >= win.start && activeIndex < win.end ? activeIndex : win.end > win.start ? win.end - 1 : -1;

  // What the list's layout depends on: when none of it changed (the page re-rendered for a
  // reaction or its clock), the rows are not measured again, which would make the browser lay
  // the page out there and then.
  const layoutKey = [
    messages,
    props.unsent.length,
    win.start,
    win.end,
    win.padTop,
    win.padBottom,
    following,
    menu,
    view.height,
    lang(),
    tabRow,
  ];
  const lastLayout = useRef<unknown[]>([]);

  useEffect(() => {
    const back = props.restore;
    if (!back) return;
    setText((now) => (now.trim() === "" ? back.text : now));
    setQuestion(back.question);
  }, [props.restore?.id]);

  useLayoutEffect(() => {
    const el = log.current;
    if (!el) return;
    const same = layoutKey.every((v, i) => Object.is(v, lastLayout.current[i]));
    lastLayout.current = layoutKey;
    if (same && !focusNext.current) return;
    // Measure the rows drawn; a changed height moves what is below it.
    let changed = false;
    for (const li of el.querySelectorAll<HTMLElement>("li[data-offset]")) {
      if (heights.current.set(Number(li.dataset.offset), li.offsetHeight)) changed = true;
    }
    const now = rowTops(count, (i) => heights.current.get(keyOf(i)));
    if (following) {
      el.scrollTop = el.scrollHeight;
    } else if (anchor.current) {
      const want = scrollForAnchor(now, (k) => messages.indexOfOffset(k), anchor.current);
      if (want !== null && Math.abs(want - el.scrollTop) > 0.5) el.scrollTop = want;
    }
    anchor.current = anchorAt(now, keyOf, el.scrollTop);
    if (focusNext.current && tabRow >= 0) {
      focusNext.current = false;
      el.querySelector<HTMLElement>(`li[data-offset="${keyOf(tabRow)}"]`)?.focus({ preventScroll: true });
    }
    if (changed) remeasured((n) => n + 1);
  });

  useEffect(() => {
    const el = log.current;
    if (!el) return;
    const resize = () => {
      // A new width wraps lines differently: measure again.
      heights.current.clear();
      setView({ top: el.scrollTop, height: el.clientHeight });
    };
    resize();
    const observer = new ResizeObserver(resize);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    heights.current.prune((k) => messages.indexOfOffset(k) >= 0);
  }, [messages.at(0)?.offset]);

  const onScroll = () => {
    const el = log.current;
    if (!el) return;
    setStuck(atBottom(el.scrollTop, el.clientHeight, el.scrollHeight));
    anchor.current = anchorAt(tops, keyOf, el.scrollTop);
    setView((v) => (v.top === el.scrollTop && v.height === el.clientHeight ? v : { top: el.scrollTop, height: el.clientHeight }));
  };

  const jump = () => {
    const el = log.current;
    setMenu(null);
    setActive(null);
    setStuck(true);
    if (el) el.scrollTop = el.scrollHeight;
  };

  /** Moves the keyboard's place to row `i`, scrolled into view. */
  const moveTo = (i: number) => {
    const el = log.current;
    if (!el || count === 0) return;
    const row = Math.max(0, Math.min(count - 1, i));
    const rowTop = tops[row]!;
    const rowBottom = tops[row + 1]!;
    if (rowTop < el.scrollTop) el.scrollTop = rowTop;
    else if (rowBottom > el.scrollTop + el.clientHeight) el.scrollTop = rowBottom - el.clientHeight;
    setView({ top: el.scrollTop, height: el.clientHeight });
    anchor.current = anchorAt(tops, keyOf, el.scrollTop);
    setActive(keyOf(row));
    focusNext.current = true;
  };

  /** Whether the open menu came from the keyboard (then the keyboard goes back to its line). */
  const menuByKeyboard = useRef(false);

  const openMenu = (offset: number, from: HTMLElement | null, keyboard: boolean) => {
    menuByKeyboard.current = keyboard;
    const box = from?.getBoundingClientRect();
    const area = log.current?.getBoundingClientRect();
    const up = box && area ? box.top - area.top > area.height / 2 : false;
    setActive(offset);
    setMenu({ offset, view: "main", up });
  };

  const keyedMenu = useRef(false);

  /**
   * Closes the menu. "keyboard" (Escape, Tab) puts the keyboard back on the line; "done" (an
   * action taken) does too when the menu was opened from the keyboard, and otherwise lets go of
   * the focus, so a mouse user's list follows the newest line again.
   */
  const closeMenu = (how: "keyboard" | "done") => {
    setMenu(null);
    if (how === "keyboard" || menuByKeyboard.current) focusNext.current = true;
    else (document.activeElement as HTMLElement | null)?.blur();
  };

  const onListKey = (e: KeyboardEvent) => {
    if (menu !== null) return;
    const current = tabRow;
    switch (e.key) {
      case "ArrowUp":
        moveTo(current - 1);
        break;
      case "ArrowDown":
        if (current === count - 1) jump();
        else moveTo(current + 1);
        break;
      case "Home":
        moveTo(0);
        break;
      case "End":
        moveTo(count - 1);
        break;
      case "Enter":
      case "ContextMenu":
        if (!props.moderation || current < 0 || !hasActions(messages.at(current)!)) return;
        // The menu key also asks for the browser's own menu next: this one stands for it.
        keyedMenu.current = e.key === "ContextMenu";
        openMenu(keyOf(current), e.target as HTMLElement, true);
        break;
      case "F10":
        if (!e.shiftKey || !props.moderation || current < 0) return;
        openMenu(keyOf(current), e.target as HTMLElement, true);
        break;
      default:
        return;
    }
    e.preventDefault();
  };

  const act = useRef((kind: Action, m: ChatMessage, arg?: number | boolean | null) => {
    const mod = moderation.current;
    if (!mod) return;
    switch (kind) {
      case "delete":
        mod.onDelete(m);
        break;
      case "answered":
        mod.onAnswered(m);
        break;
      case "call":
        mod.onCallOn(m);
        break;
      case "mute":
        mod.onMute(m, arg as number | null);
        break;
      case "remove":
        mod.onRemove(m, arg as boolean);
        break;
    }
  });
  const rowEvents = useRef<RowEvents>({
    act: (kind, m, arg) => {
      act.current(kind, m, arg);
      closeMenu("done");
    },
    open: openMenu,
    view: (offset, v) => setMenu((cur) => (cur && cur.offset === offset ? { ...cur, view: v } : cur)),
    close: closeMenu,
  });
  rowEvents.current.open = openMenu;
  rowEvents.current.close = closeMenu;

  const submit = (e: Event) => {
    e.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return;
    if ([...trimmed].length > props.maxChars) {
      setProblem(t("chat_too_long", { max: props.maxChars }));
      return;
    }
    if (props.onSend(trimmed, question)) {
      setText("");
      setQuestion(false);
      setProblem(null);
      jump();
    }
  };

  const rows = [];
  for (let i = win.start; i < win.end; i++) {
    const m = messages.at(i)!;
    rows.push(
      <ChatRow
        key={m.offset}
        m={m}
        staff={props.moderation !== undefined}
        tabbable={i === tabRow}
        menu={menu && menu.offset === m.offset ? menu.view : null}
        menuUp={menu !== null && menu.offset === m.offset && menu.up}
        lang={lang()}
        events={rowEvents.current}
      />,
    );
  }

  const muted = props.mutedUntil !== null && props.mutedUntil > Date.now();
  return (
    <section class="chat" aria-labelledby="chat-title">
      <h2 id="chat-title">{t("chat_title")}</h2>
      <div class="chat-box">
        <div
          class="chat-log"
          role="log"
          aria-live="off"
          aria-label={t("chat_log_label")}
          ref={log}
          onScroll={onScroll}
          tabIndex={tabRow < 0 ? 0 : -1}
          onFocusIn={(e) => {
            setFocused(true);
            const row = (e.target as HTMLElement).closest<HTMLElement>("li[data-offset]");
            if (row) setActive(Number(row.dataset.offset));
          }}
          onFocusOut={() => {
            // Decided once the focus has landed: a menu changing its items moves the focus
            // from a removed item to a new one, which is no leaving.
            setTimeout(() => {
              if (!log.current?.contains(document.activeElement)) {
                setFocused(false);
                setMenu(null);
              }
            }, 0);
          }}
          onKeyDown={onListKey}
          onContextMenu={(e) => {
            if (keyedMenu.current) e.preventDefault();
            keyedMenu.current = false;
          }}
          data-rows-drawn={win.end - win.start}
          data-rows={count}
        >
          <div class="chat-pad" style={{ height: `${win.padTop}px` }} />
          <ol class="chat-list">
            {count === 0 && props.unsent.length === 0 && <li class="chat-empty">{t("chat_empty")}</li>}
            {rows}
          </ol>
          <div class="chat-pad" style={{ height: `${win.padBottom}px` }} />
          {props.unsent.length > 0 && (
            <ol class="chat-list">
              {props.unsent.map((u) => (
                <li key={`unsent-${u.id}`} class={`chat-line unsent${u.question ? " question" : ""}`} data-unsent={u.id}>
                  <span class="chat-meta">
                    <span class="tag unsent">{t(u.offline ? "chat_unsent_offline" : "chat_unsent")}</span>
                    {u.question && <span class="tag question">{t("chat_badge_question")}</span>}
                  </span>
                  <span class="chat-text">{u.text}</span>
                </li>
              ))}
            </ol>
          )}
        </div>
        {unseen > 0 && (
          <button
            type="button"
            class="chat-jump"
            aria-label={t("chat_new_messages_label", { count: unseen })}
            data-count={unseen}
            onClick={(e) => {
              // The button goes once the list is at the bottom: the keyboard moves on to the
              // message box rather than being dropped at the top of the page.
              const keyboard = e.detail === 0;
              jump();
              if (keyboard) document.getElementById("chat-input")?.focus();
            }}
          >
            {t("chat_new_messages", { count: unseen })}
          </button>
        )}
      </div>
      {props.moderation && (
        <p id="chat-list-help" class="visually-hidden">
          {t("chat_list_help")}
        </p>
      )}
      <Announcer messages={messages} you={props.you} />
      <form class="chat-form" onSubmit={submit}>
        {muted && (
          <p class="muted-note" role="status">
            {t("chat_muted", { time: formatTime(props.mutedUntil!) })}
          </p>
        )}
        <label for="chat-input" class="visually-hidden">
          {t("chat_input")}
        </label>
        <textarea
          id="chat-input"
          rows={2}
          value={text}
          disabled={muted}
          maxLength={props.maxChars * 2}
          onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
          }}
        />
        <div class="chat-form-row">
          {props.canAsk && (
            <label class="check">
              <input
                type="checkbox"
                checked={question}
                disabled={muted}
                onChange={(e) => setQuestion((e.currentTarget as HTMLInputElement).checked)}
              />
              {t("chat_question")}
            </label>
          )}
          <button type="submit" class="primary" disabled={muted}>
            {t("chat_send")}
          </button>
        </div>
        {problem && (
          <p class="error" role="alert">
            {problem}
          </p>
        )}
      </form>
    </section>
  );
}

/** How many lines after `offset` the list holds (all of them when `offset` scrolled away). */
export function countAfter(messages: ChatLog, offset: number): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (messages.at(mid)!.offset <= offset) lo = mid + 1;
    else hi = mid;
  }
  return messages.length - lo;
}

type Action = "delete" | "answered" | "call" | "mute" | "remove";

interface RowEvents {
  act: (kind: Action, m: ChatMessage, arg?: number | boolean | null) => void;
  open: (offset: number, from: HTMLElement | null, keyboard: boolean) => void;
  view: (offset: number, view: MenuView) => void;
  close: (how: "keyboard" | "done") => void;
}

/** Whether staff can do anything with a line. */
function hasActions(m: ChatMessage): boolean {
  return !m.deleted || m.role === "learner";
}

function roleBadge(m: ChatMessage) {
  if (m.role === "instructor") return <span class="tag staff">{t("chat_badge_instructor")}</span>;
  if (m.role === "moderator") return <span class="tag staff moderator">{t("chat_badge_moderator")}</span>;
  return null;
}

/** One line; drawn again only when the line, its place in the tab order, its menu or the
 * language changes. */
const ChatRow = memo(function ChatRow(props: {
  m: ChatMessage;
  staff: boolean;
  tabbable: boolean;
  menu: MenuView | null;
  menuUp: boolean;
  /** The page's language: a row is drawn again in the other one. */
  lang: Lang;
  events: RowEvents;
}) {
  const { m, events } = props;
  const menuId = `chat-menu-${m.offset}`;
  return (
    <li
      class={`chat-line${m.deleted ? " deleted" : ""}${m.role !== "learner" ? " staff" : ""}${m.question ? " question" : ""}`}
      data-offset={m.offset}
      tabIndex={props.tabbable ? 0 : -1}
      aria-describedby={props.staff && props.tabbable ? "chat-list-help" : undefined}
    >
      <span class="chat-meta">
        <span class="nick">{m.nickname}</span>
        {roleBadge(m)}
        {m.question && <span class="tag question">{t("chat_badge_question")}</span>}
        {m.answered && <span class="tag answered">{t("chat_badge_answered")}</span>}
        {m.call_answer && <span class="tag call">{t("chat_badge_call_answer")}</span>}
        <time class="at">{formatTime(m.at)}</time>
      </span>
      <span class="chat-text">{m.deleted ? t("chat_deleted") : m.text}</span>
      {props.staff && hasActions(m) && (
        <button
          type="button"
          class="chat-menu-button"
          tabIndex={-1}
          aria-label={t("chat_line_actions", { nickname: m.nickname })}
          aria-haspopup="menu"
          aria-expanded={props.menu !== null}
          aria-controls={props.menu !== null ? menuId : undefined}
          onClick={(e) => {
            e.stopPropagation();
            if (props.menu !== null) events.close("done");
            else events.open(m.offset, e.currentTarget as HTMLElement, e.detail === 0);
          }}
        >
          <span aria-hidden="true">⋯</span>
        </button>
      )}
      {props.menu !== null && <LineMenu id={menuId} m={m} view={props.menu} up={props.menuUp} events={events} />}
    </li>
  );
});

/** A line's moderation menu: arrow keys move, Enter acts, Escape goes back or closes. */
function LineMenu(props: { id: string; m: ChatMessage; view: MenuView; up: boolean; events: RowEvents }) {
  const { m, events } = props;
  const ref = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    ref.current?.querySelector<HTMLElement>('[role="menuitem"]')?.focus();
  }, [props.view]);

  const onKey = (e: KeyboardEvent) => {
    const items = [...(ref.current?.querySelectorAll<HTMLElement>('[role="menuitem"]') ?? [])];
    const at = items.indexOf(document.activeElement as HTMLElement);
    switch (e.key) {
      case "ArrowDown":
        items[(at + 1) % items.length]?.focus();
        break;
      case "ArrowUp":
        items[(at - 1 + items.length) % items.length]?.focus();
        break;
      case "Home":
        items[0]?.focus();
        break;
      case "End":
        items[items.length - 1]?.focus();
        break;
      case "Escape":
        if (props.view === "main") events.close("keyboard");
        else events.view(m.offset, "main");
        break;
      case "Tab":
        events.close("keyboard");
        break;
      default:
        // Enter and Space press the focused item (a button); other keys stay in the menu.
        e.stopPropagation();
        return;
    }
    e.preventDefault();
    e.stopPropagation();
  };

  const item = (label: string, onClick: () => void, danger = false) => (
    <button type="button" role="menuitem" tabIndex={-1} class={danger ? "danger" : undefined} onClick={onClick}>
      {label}
    </button>
  );
  const learner = m.role === "learner";
  let title: string | null = null;
  let items;
  switch (props.view) {
    case "main":
      items = (
        <>
          {m.question && !m.answered && !m.deleted && item(t("console_mark_answered"), () => events.act("answered", m))}
          {!m.deleted && item(t("console_delete"), () => events.act("delete", m))}
          {learner && item(t("console_call_this"), () => events.act("call", m))}
          {learner && item(t("console_mute"), () => events.view(m.offset, "mute"))}
          {learner && item(t("console_remove"), () => events.view(m.offset, "remove"), true)}
        </>
      );
      break;
    case "mute":
      title = t("console_mute_title", { nickname: m.nickname });
      items = (
        <>
          {MUTE_MINUTES.map((min) => item(t("console_mute_minutes", { minutes: min }), () => events.act("mute", m, min * 60)))}
          {item(t("console_mute_until_end"), () => events.act("mute", m, null))}
          {item(t("console_menu_back"), () => events.view(m.offset, "main"))}
        </>
      );
      break;
    case "remove":
      title = t("console_remove_confirm", { nickname: m.nickname });
      items = (
        <>
          {item(t("console_remove_may_return"), () => events.act("remove", m, true), true)}
          {item(t("console_remove_no_return"), () => events.act("remove", m, false), true)}
          {item(t("console_menu_back"), () => events.view(m.offset, "main"))}
        </>
      );
      break;
  }
  const titleId = `${props.id}-title`;
  // The title sits beside the menu, not in it: a menu holds only its items.
  return (
    <div class={`chat-menu${props.up ? " up" : ""}`} ref={ref} onKeyDown={onKey} data-view={props.view}>
      {title !== null && (
        <p class="chat-menu-title" id={titleId}>
          {title}
        </p>
      )}
      <div
        id={props.id}
        class="chat-menu-items"
        role="menu"
        aria-label={title === null ? t("chat_line_actions", { nickname: m.nickname }) : undefined}
        aria-labelledby={title === null ? undefined : titleId}
      >
        {items}
      </div>
    </div>
  );
}

/**
 * New lines for screen readers, without flooding: a polite region says one line (a question,
 * an answer to a call, or any single line) or a count ("12 new messages, 2 questions"), at most
 * once every `ANNOUNCE_EVERY_MS`.
 */
function Announcer({ messages, you }: { messages: ChatLog; you?: string }) {
  const [said, setSaid] = useState("");
  const last = useRef(messages.at(messages.length - 1)?.offset ?? 0);
  const pending = useRef<ChatMessage[]>([]);
  const lastSaid = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    for (let i = messages.length - countAfter(messages, last.current); i < messages.length; i++) {
      const m = messages.at(i)!;
      if (m.user !== you && !m.deleted) pending.current.push(m);
    }
    last.current = messages.at(messages.length - 1)?.offset ?? last.current;
    if (pending.current.length === 0 || timer.current) return;
    const flush = () => {
      timer.current = null;
      const text = announcement(pending.current);
      pending.current = [];
      lastSaid.current = Date.now();
      if (text) setSaid(text);
    };
    timer.current = setTimeout(flush, Math.max(0, lastSaid.current + ANNOUNCE_EVERY_MS - Date.now()));
  }, [messages]);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  return (
    <p class="visually-hidden" role="status" aria-live="polite" data-chat-announcer>
      {said}
    </p>
  );
}

/** What to say for lines that arrived since the last announcement. */
export function announcement(lines: ChatMessage[]): string {
  if (lines.length === 0) return "";
  if (lines.length === 1) {
    const m = lines[0]!;
    const params = { nickname: m.nickname, text: m.text };
    if (m.question) return t("chat_announce_question", params);
    if (m.call_answer) return t("chat_announce_call_answer", params);
    return t("chat_announce_line", params);
  }
  const questions = lines.filter((m) => m.question).length;
  return questions > 0
    ? t("chat_announce_summary_questions", { count: lines.length, questions })
    : t("chat_announce_summary", { count: lines.length });
}
