import { render } from "preact";
import { App } from "./app";
import { adoptFragmentToken } from "./auth";
import { lang } from "./i18n";
import "./styles.css";

adoptFragmentToken();
document.documentElement.lang = lang();
render(<App />, document.getElementById("app")!);
