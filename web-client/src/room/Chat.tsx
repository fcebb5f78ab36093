// The chat: a `role="log"` list (screen readers read new messages politely) and the input.
// Nicknames and texts are JSX text, so HTML in them shows as typed and never runs.
import type { ChatMessage } from "@protocol/ChatMessage";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { formatTime, t } from "../i18n";

/** A line typed here that the node has not acknowledged yet. */
export interface UnsentLine {
  id: number;
  text: string;
  question: boolean;
  /** No connection to send it on yet: marked as waiting for the network, not as on its way. */
  offline?: boolean;
}

export interface ChatProps {
  messages: ChatMessage[];
  /** Lines typed here, not yet acknowledged: shown after the others as still being sent. */
  unsent: UnsentLine[];
  maxChars: number;
  mutedUntil: number | null;
  /** Sends (or queues until connected); false when it cannot take more (what was typed stays). */
  onSend: (text: string, question: boolean) => boolean;
  /** Staff only: moderation on each learner's message. */
  moderation?: {
    onDelete: (m: ChatMessage) => void;
    onMute: (m: ChatMessage) => void;
    onRemove: (m: ChatMessage) => void;
    onAnswered: (m: ChatMessage) => void;
  };
  canAsk: boolean;
  /** A line the node refused: put back in the input (unless something new is being typed). */
  restore?: UnsentLine | null;
}

export function Chat(props: ChatProps) {
  const log = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const [text, setText] = useState("");
  const [question, setQuestion] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    const back = props.restore;
    if (!back) return;
    setText((now) => (now.trim() === "" ? back.text : now));
    setQuestion(back.question);
  }, [props.restore?.id]);

  useLayoutEffect(() => {
    const el = log.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [props.messages, props.unsent]);

  const onScroll = () => {
    const el = log.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

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
      stick.current = true;
    }
  };

  const muted = props.mutedUntil !== null && props.mutedUntil > Date.now();
  return (
    <section class="chat" aria-labelledby="chat-title">
      <h2 id="chat-title">{t("chat_title")}</h2>
      <div class="chat-log" role="log" aria-live="polite" aria-label={t("chat_log_label")} ref={log} onScroll={onScroll} tabIndex={0}>
        <ol class="chat-list">
        {props.messages.length === 0 && props.unsent.length === 0 && <li class="chat-empty">{t("chat_empty")}</li>}
        {props.messages.map((m) => (
          <li
            key={m.offset}
            class={`chat-line${m.deleted ? " deleted" : ""}${m.role !== "learner" ? " staff" : ""}${m.question ? " question" : ""}`}
            data-offset={m.offset}
          >
            <span class="chat-meta">
              <span class="nick">{m.nickname}</span>
              {m.role !== "learner" && <span class="tag staff">{t("chat_badge_staff")}</span>}
              {m.question && <span class="tag question">{t("chat_badge_question")}</span>}
              {m.answered && <span class="tag answered">{t("chat_badge_answered")}</span>}
              {m.call_answer && <span class="tag call">{t("chat_badge_call_answer")}</span>}
              <time class="at">{formatTime(m.at)}</time>
            </span>
            <span class="chat-text">{m.deleted ? t("chat_deleted") : m.text}</span>
            {props.moderation && !m.deleted && (
              <span class="chat-actions">
                {m.question && !m.answered && (
                  <button type="button" onClick={() => props.moderation!.onAnswered(m)}>
                    {t("console_mark_answered")}
                  </button>
                )}
                <button type="button" onClick={() => props.moderation!.onDelete(m)}>
                  {t("console_delete")}
                </button>
                {m.role === "learner" && (
                  <>
                    <button type="button" onClick={() => props.moderation!.onMute(m)}>
                      {t("console_mute")}
                    </button>
                    <button type="button" class="danger" onClick={() => props.moderation!.onRemove(m)}>
                      {t("console_remove")}
                    </button>
                  </>
                )}
              </span>
            )}
          </li>
        ))}
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
      </div>
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
