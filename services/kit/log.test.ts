import test from "ava";
import { LogCapture } from "../../test/support/log-capture.js";
import { createLogger } from "./log.js";

test("credentials and prompt text are redacted wherever they appear in a log object", async (t) => {
  const capture = new LogCapture();
  const log = createLogger({ service: "t", destination: capture });
  log.info(
    {
      token: "alk_secret1",
      req: { headers: { authorization: "Bearer alk_secret2", "x-api-key": "k3" } },
    },
    "one",
  );
  log.info(
    { body: { messages: [{ content: "my prompt" }], apiKey: "k4" }, idToken: "jwt5" },
    "two",
  );
  await new Promise((resolve) => setImmediate(resolve));
  for (const secret of ["alk_secret1", "alk_secret2", "k3", "my prompt", "k4", "jwt5"]) {
    t.false(capture.text.includes(secret), secret);
  }
  t.true(capture.text.includes("[redacted]"));
});
