//! The few pages the authorization server shows a person: sign-in, consent, and refusals. Plain
//! HTML, every value escaped, no script; the HTTP layer sends them with a policy that forbids
//! framing (a consent screen inside another site's frame would invite clickjacking).

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} – Invicta</title><style>\
         body{{font-family:Arial,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#212b32;line-height:1.5}}\
         h1{{font-size:1.75rem}} label{{display:block;margin-top:.75rem;font-weight:bold}}\
         input,select{{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}}\
         button{{font-size:1rem;padding:.6rem 1.2rem;margin:1rem .5rem 0 0;border:0;border-radius:4px;cursor:pointer}}\
         .go{{background:#007f3b;color:#fff}} .stop{{background:#d5281b;color:#fff}}\
         .warn{{border-left:8px solid #ffeb3b;padding:.5rem 1rem;background:#fff9c4}}\
         </style></head><body><main>\n<h1>{}</h1>\n{}\n</main></body></html>\n",
        escape(title),
        escape(title),
        body
    )
}

/// A refusal page: what went wrong and what the person can do.
pub fn refusal(title: &str, message: &str) -> String {
    page(title, &format!("<p>{}</p>", escape(message)))
}
