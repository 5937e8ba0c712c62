"""The instructor's page, server-rendered: a scoreboard learner × lab that refreshes itself (a little inline
JavaScript polling scores.json, no CDN: the classroom may be offline), a page per learner, a CSV download.

A cell shows the counted score (server-side `dealab class grade`) coloured by progress, the self-reported
score beside it when there is one, and "ref" when the reference solution produced the state graded.
"""

from __future__ import annotations

import json
from html import escape

from dealab.classroom.roster import Learner
from dealab.wire.messages import AwsResponse

REFRESH_MILLISECONDS = 3000
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:center}
td.learner{text-align:left}
.none{background:#f3f3f3;color:#999}.zero{background:#f8d7da}.partial{background:#fff3cd}.full{background:#d4edda}
.ref{outline:3px dashed #6f42c1}.self{font-size:.8em;color:#555}
.running{color:#1a7f37}.stopped{color:#888}.crashed{color:#b00020}
"""
# Rebuilds each cell and status from scores.json; the cells' ids are "cell-<learner>-<lab>" and "state-<learner>".
SCRIPT = """
const labs = JSON.parse(document.getElementById('labs').textContent);
function render(data){
  const rows = {};
  for (const row of data.rows) rows[row.learner + '-' + row.lab] = row;
  for (const cell of document.querySelectorAll('td[data-cell]')) {
    const row = rows[cell.dataset.cell];
    cell.className = progress(row) + (row && row.by_reference ? ' ref' : '');
    cell.textContent = row && row.best_score !== null ? row.best_score + '/' + row.total : '—';
    if (row && row.by_reference) cell.textContent += ' ref';
    if (row && row.self_reported_last !== null) {
      const self = document.createElement('div'); self.className = 'self';
      self.textContent = 'self-reported ' + row.self_reported_last + '/' + row.total; cell.appendChild(self);
    }
  }
  for (const learner of data.learners) {
    const state = document.getElementById('state-' + learner.learner);
    if (!state) continue;
    state.className = learner.crashes ? 'crashed' : learner.state;
    state.textContent = learner.state + (learner.crashes ? ' (restarted after ' + learner.crashes + ' crash(es))' : '')
      + (learner.last_activity ? ' · last activity ' + learner.last_activity : '');
  }
  document.getElementById('updated').textContent = new Date().toISOString();
}
function progress(row){
  if (!row || row.best_score === null) return 'none';
  if (row.best_score === row.total) return 'full';
  return row.best_score === 0 ? 'zero' : 'partial';
}
async function refresh(){
  try { const answer = await fetch('scores.json', {credentials: 'same-origin'}); if (answer.ok) render(await answer.json()); }
  catch (error) { document.getElementById('updated').textContent = 'front door unreachable: ' + error; }
}
refresh(); setInterval(refresh, %d);
""" % REFRESH_MILLISECONDS


def html(body: str, status: int = 200) -> AwsResponse:
    return AwsResponse(status, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                                ("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"),
                                ("X-Frame-Options", "DENY")], body.encode())


def refusal(status: int, message: str) -> AwsResponse:
    return html(_document("dealab classroom", f"<p>{escape(message)}</p>"), status)


def _document(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>")


def _labs() -> list[int]:
    from dealab.labs import all_labs

    return [lab.number for lab in all_labs()]


def board(learners: list[Learner], rows: list[dict], status: list[dict]) -> str:
    """The scoreboard as first served; the script keeps it current."""
    labs = _labs()
    by_cell = {(row["learner"], row["lab"]): row for row in rows}
    states = {entry["learner"]: entry for entry in status}
    head = "".join(f"<th>{lab:02d}</th>" for lab in labs)
    lines = []
    for learner in learners:
        state = states.get(learner.id, {})
        cells = "".join(_cell(learner.id, lab, by_cell.get((learner.id, lab))) for lab in labs)
        lines.append(f"<tr><td class='learner'><a href='learner/{escape(learner.id)}'>{escape(learner.id)}</a> {escape(learner.name)}"
                     f"<div id='state-{escape(learner.id)}' class='{escape(state.get('state', 'stopped'))}'>{escape(state.get('state', 'stopped'))}</div></td>{cells}</tr>")
    body = (f"<h1>dealab classroom</h1><p>{len(learners)} learners · counted scores come from <code>dealab class grade</code>; "
            "self-reported ones from a learner's own <code>make grade-N</code>; a dashed outline marks the reference solution's. "
            "<a href='scores.csv' download>Download CSV</a> · updated <span id='updated'>now</span></p>"
            f"<table id='board'><thead><tr><th>learner</th>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
            f"<script type='application/json' id='labs'>{json.dumps(labs)}</script><script>{SCRIPT}</script>")
    return _document("dealab classroom", body)


def _cell(learner: str, lab: int, row: dict | None) -> str:
    if row is None or row["best_score"] is None:
        kind, text = "none", "—"
    else:
        kind = "full" if row["best_score"] == row["total"] else "zero" if row["best_score"] == 0 else "partial"
        text = f"{row['best_score']}/{row['total']}" + (" ref" if row["by_reference"] else "")
    if row is not None and row["by_reference"]:
        kind += " ref"
    self_reported = f"<div class='self'>self-reported {row['self_reported_last']}/{row['total']}</div>" if row and row["self_reported_last"] is not None else ""
    return f"<td data-cell='{escape(learner)}-{lab}' class='{kind}'>{escape(text)}{self_reported}</td>"


def learner_view(learner: Learner, record: dict, status: dict) -> str:
    """One learner: their stack's state, last activity, and for each lab the failing checks of the last counted grading."""
    latest: dict[str, dict] = {}
    for entry in record.get("graded", []):
        latest[entry["lab"]] = entry
    sections = []
    for lab, entry in sorted(latest.items(), key=lambda item: int(item[0])):
        failing = "".join(f"<li><b>{escape(f['id'])}</b> {escape(f['title'])}: {escape(f['message'])}</li>" for f in entry["failing"])
        sections.append(f"<h2>lab {int(lab):02d}: {entry['score']}/{entry['total']}" + (" (reference solution)" if entry["by_reference"] else "")
                        + f"</h2><p>graded {escape(entry['at_real'])} (lab time {escape(str(entry['at_lab']))})</p>"
                        + (f"<ul class='failing'>{failing}</ul>" if failing else "<p>every check passes</p>"))
    crashes = f" · restarted after {status['crashes']} crash(es), last {escape(status['last_crash'])}" if status.get("crashes") else ""
    body = (f"<p><a href='../'>← scoreboard</a></p><h1>{escape(learner.id)} {escape(learner.name)}</h1>"
            f"<p id='stack'>stack {escape(status['state'])}{crashes} · last activity {escape(status.get('last_activity') or 'none yet')}"
            f" ({escape(status.get('last_request') or '-')})</p>"
            + ("".join(sections) or "<p>not graded yet: <code>dealab class grade --lab N</code></p>"))
    return _document(f"dealab classroom: {learner.id}", body)
