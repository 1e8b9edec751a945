// A small, safe markdown renderer for the answers of agents.
//
// Safety first: the text is HTML-escaped before any markdown is turned into tags, so nothing
// the model writes can become markup of its own; links are kept only for http(s), mailto and
// same-site addresses, and open in a new tab without a referrer. Supported: paragraphs and
// line breaks, headings, fenced and indented code, block quotes, lists (bulleted, numbered),
// horizontal rules, **bold**, *italic*, ~~struck~~, `code`, [links](https://...) and bare
// https:// addresses.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const SAFE_URL = /^(https?:\/\/|mailto:|\/(?!\/)|#)/i;

function link(label, url) {
  // ``url`` is escaped text already; its scheme is checked on that text.
  if (!SAFE_URL.test(url)) return `${label} (${url})`;
  return `<a href="${url}" target="_blank" rel="noopener noreferrer">${label}</a>`;
}

function emphasis(text) {
  return text
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, "<strong>$1</strong>")
    .replace(/__(?=\S)([\s\S]*?\S)__/g, "<strong>$1</strong>")
    .replace(/(^|[^*\w])\*(?=\S)([^*]*?\S)\*(?![*\w])/g, "$1<em>$2</em>")
    .replace(/(^|[^_\w])_(?=\S)([^_]*?\S)_(?![_\w])/g, "$1<em>$2</em>")
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, "<del>$1</del>");
}

function links(text) {
  // Markdown links first, then bare addresses that are not inside one.
  const parts = [];
  let last = 0;
  const pattern = /\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/(?:[^\s<&]|&amp;)*[^\s<&.,;:!?)])/g;
  for (const match of text.matchAll(pattern)) {
    parts.push(emphasis(text.slice(last, match.index)));
    if (match[3]) parts.push(link(match[3], match[3]));
    else parts.push(link(emphasis(match[1]), match[2]));
    last = match.index + match[0].length;
  }
  parts.push(emphasis(text.slice(last)));
  return parts.join("");
}

export function renderInline(text) {
  // Code spans are cut out first: nothing inside them is markdown.
  const pieces = String(text).split(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/);
  let html = "";
  for (let i = 0; i < pieces.length; i += 3) {
    html += links(escapeHtml(pieces[i]));
    if (i + 2 < pieces.length) html += `<code>${escapeHtml(pieces[i + 2].trim())}</code>`;
  }
  return html;
}

const FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const INDENTED = /^( {4}|\t)(.*)$/;

function list(lines, start, pattern, tag) {
  const items = [];
  let i = start;
  let first = null;
  while (i < lines.length) {
    const match = lines[i].match(pattern);
    if (match) {
      if (first === null && tag === "ol") first = Number(match[1]);
      items.push(tag === "ol" ? match[2] : match[1]);
    } else if (items.length && /^\s{2,}\S/.test(lines[i])) {
      items[items.length - 1] += "\n" + lines[i].trim();
    } else {
      break;
    }
    i += 1;
  }
  const open = tag === "ol" && first !== 1 ? `<ol start="${first}">` : `<${tag}>`;
  const body = items.map((item) => `<li>${renderInline(item).replace(/\n/g, "<br>")}</li>`);
  return { html: open + body.join("") + `</${tag}>`, next: i };
}

function startsBlock(line) {
  return [FENCE, HEADING, RULE, BULLET, NUMBERED, QUOTE].some((p) => p.test(line));
}

export function renderMarkdown(source) {
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let match;
    if (!line.trim()) {
      i += 1;
    } else if ((match = line.match(FENCE))) {
      const fence = match[1];
      const code = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) code.push(lines[i++]);
      i += 1; // the closing fence (or the end of an answer still streaming)
      const lang = match[2] ? ` data-lang="${escapeHtml(match[2])}"` : "";
      out.push(`<pre><code${lang}>${escapeHtml(code.join("\n"))}</code></pre>`);
    } else if ((match = line.match(HEADING))) {
      const level = match[1].length;
      out.push(`<h${level}>${renderInline(match[2])}</h${level}>`);
      i += 1;
    } else if (RULE.test(line)) {
      out.push("<hr>");
      i += 1;
    } else if (BULLET.test(line) || NUMBERED.test(line)) {
      const numbered = !BULLET.test(line);
      const done = list(lines, i, numbered ? NUMBERED : BULLET, numbered ? "ol" : "ul");
      out.push(done.html);
      i = done.next;
    } else if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && (match = lines[i].match(QUOTE))) {
        quoted.push(match[1]);
        i += 1;
      }
      out.push(`<blockquote>${renderMarkdown(quoted.join("\n"))}</blockquote>`);
    } else if (INDENTED.test(line)) {
      const code = [];
      while (i < lines.length && (match = lines[i].match(INDENTED))) {
        code.push(match[2]);
        i += 1;
      }
      out.push(`<pre><code>${escapeHtml(code.join("\n"))}</code></pre>`);
    } else {
      const paragraph = [];
      while (i < lines.length && lines[i].trim() && !startsBlock(lines[i])) {
        paragraph.push(lines[i].trim());
        i += 1;
      }
      out.push(`<p>${paragraph.map(renderInline).join("<br>")}</p>`);
    }
  }
  return out.join("\n");
}
