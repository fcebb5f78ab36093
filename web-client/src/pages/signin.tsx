import type { DemoPerson } from "@gate/DemoPerson";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { setToken } from "../auth";
import { t } from "../i18n";
import { navigate } from "../router";

export function SignInPage() {
  const [people, setPeople] = useState<DemoPerson[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notDemo, setNotDemo] = useState(false);

  useEffect(() => {
    api
      .demoUsers()
      .then((r) => setPeople(r.users))
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) setNotDemo(true);
        else setError(e instanceof Error ? e.message : String(e));
      });
  }, []);

  const signIn = async (id: string) => {
    setError(null);
    try {
      const r = await api.demoSignIn(id);
      setToken(r.token);
      navigate("/lectures");
    } catch (e) {
      setError(t("signin_failed", { message: e instanceof ApiError ? e.localized() : String(e) }));
    }
  };

  return (
    <section class="page narrow" aria-labelledby="signin-title">
      <h1 id="signin-title">{t("signin_title")}</h1>
      {notDemo && <p>{t("signin_portal_only")}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {people === null && !notDemo && !error && <p>{t("loading")}</p>}
      {people && (
        <>
          <p>{t("signin_intro")}</p>
          <ul class="people">
            {people.map((p) => (
              <li key={p.id}>
                <button type="button" class="person" data-user={p.id} onClick={() => void signIn(p.id)}>
                  <span class="person-id">{p.id}</span>
                  <span class="person-about">{p.about}</span>
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
