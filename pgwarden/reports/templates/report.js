// pgwarden report: filters, search and pages over the findings embedded as JSON, the
// access matrices of servers too large for a static table, and the compliance view's
// framework picker.
// Data is only ever written with textContent or as attribute values, never parsed
// as HTML: names come from the audited server and may hold markup.
(function () {
  "use strict";

  var COLUMNS = ["rule", "severity", "status", "server", "app", "resource", "principal",
    "message", "evidence", "remediation", "waiver", "baseline_state", "first_seen",
    "fingerprint", "age"];
  var RULE = 0, SEV = 1, STATUS = 2, SERVER = 3, APP = 4, RESOURCE = 5, PRINCIPAL = 6,
    MESSAGE = 7, EVIDENCE = 8, REMEDIATION = 9, WAIVER = 10, BASELINE = 11,
    FIRST_SEEN = 12, FINGERPRINT = 13, AGE = 14;
  // Printing renders every matching finding expanded, up to this many.
  var PRINT_LIMIT = 1000;
  var BASELINE_LABELS = { "new": "new", "unchanged": "in baseline", "absent": "no longer found" };

  var data = JSON.parse(document.getElementById("pgw-data").textContent);
  if (data.columns.join() !== COLUMNS.join()) {
    throw new Error("pgwarden report: unexpected finding columns " + data.columns.join());
  }
  var F = data.findings, rules = data.rules, n = F.length;
  // Pass records (--include-passed) are evidence, not findings: shown when asked for.
  function shownByDefault(status) { return status !== "pass"; }
  var state = {
    sev: data.severities.map(function () { return true; }),
    status: data.statuses.map(shownByDefault),
    server: "", app: "", rule: "", q: "", page: 0, size: 100
  };
  var filtered = [], familyCounts = {}, haystack = null;

  function $(id) { return document.getElementById(id); }
  // Invisible and direction-changing characters (as templating.py's reveal_invisible):
  // a name holding U+202E must not pass for another name.
  var INVISIBLE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
  function reveal(text) {
    return text.replace(INVISIBLE, function (c) {
      return "\u27e8U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "\u27e9";
    });
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = reveal(String(text));
    return node;
  }
  function fmt(x) { return x.toLocaleString("en-US"); }
  function plural(x, word) { return fmt(x) + " " + word + (x === 1 ? "" : "s"); }
  function safeHref(uri) { return /^https?:\/\//i.test(uri || "") ? uri : null; }

  // ---- access matrices too large for a static table ------------------------------
  // data.matrices holds them as access_matrix.py's compact(): per principal, flat
  // "column, code" pairs, code = 2 * kind index in data.access_kinds + violation.
  var MATRIX_COLUMNS = 25, MATRIX_ROWS = 200;

  function explorer(box, m) {
    var names = m.principals, dbs = m.databases;
    var publicRow = names.indexOf("PUBLIC");
    var own = m.cells.map(function (flat) {
      var cells = new Map();
      for (var i = 0; i < flat.length; i += 2) cells.set(flat[i], flat[i + 1]);
      return cells;
    });
    // As AccessMatrix.cell: PUBLIC's CONNECT reaches every role, so a principal with
    // no access of its own reaches what PUBLIC may connect to, via PUBLIC.
    function code(row, column) {
      var c = own[row].get(column);
      if (c === undefined && publicRow >= 0 && row !== publicRow) c = own[publicRow].get(column);
      return c === undefined ? -1 : c;
    }
    // Rows are PUBLIC and the principals with access of their own on the page (or,
    // asked for by name, any access): everyone else reaches only what PUBLIC does.
    function listed(row, columns, byName) {
      return columns.some(function (column) {
        return byName ? code(row, column) >= 0 : own[row].has(column);
      });
    }
    var dbText = dbs.map(function (d) { return (d[0] + "\n" + (d[1] || "")).toLowerCase(); });
    var rowText = names.map(function (name) { return name.toLowerCase(); });
    function part(role) { return box.querySelector('[data-role="' + role + '"]'); }
    var grid = part("grid"), page = 0;

    function cellNode(row, column) {
      var principal = names[row], database = dbs[column][0], c = code(row, column);
      if (c < 0) {
        var none = el("td", "cell none", "\u2014");
        none.title = reveal(principal + " cannot connect to " + database);
        return none;
      }
      var kind = data.access_kinds[c >> 1], violation = (c & 1) === 1;
      var td = el("td", "cell " + kind[0] + (violation ? " bad" : ""),
        row === publicRow ? "CONNECT" : kind[1]);
      td.title = reveal(principal + " \u2192 " + database + ": " + kind[2] +
        (violation ? " (violation)" : ""));
      return td;
    }

    function draw() {
      var dbQuery = part("database").value.trim().toLowerCase();
      var appQuery = part("reacher").value.trim().toLowerCase();
      var exposedOnly = part("exposed").checked;
      var apps = [];
      for (var r = 0; r < names.length; r++) {
        if (r !== publicRow && rowText[r].indexOf(appQuery) >= 0) apps.push(r);
      }
      var columns = [];
      for (var c = 0; c < dbs.length; c++) {
        if (exposedOnly && !dbs[c][2]) continue;
        if (dbQuery && dbText[c].indexOf(dbQuery) < 0) continue;
        if (appQuery && !apps.some(function (row) { return code(row, c) >= 0; })) continue;
        columns.push(c);
      }
      var pages = Math.max(1, Math.ceil(columns.length / MATRIX_COLUMNS));
      if (page >= pages) page = pages - 1;
      var shown = columns.slice(page * MATRIX_COLUMNS, (page + 1) * MATRIX_COLUMNS);
      var rows = apps.filter(function (row) { return listed(row, shown, appQuery !== ""); });
      var hidden = Math.max(0, rows.length - MATRIX_ROWS);
      rows = rows.slice(0, MATRIX_ROWS);
      if (publicRow >= 0) rows.unshift(publicRow);

      grid.textContent = "";
      var head = el("thead"), top = el("tr"), corner = el("th", "corner");
      corner.scope = "col";
      corner.appendChild(el("span", null, "app"));
      corner.appendChild(document.createTextNode(" \u2193 "));
      corner.appendChild(el("span", null, "database"));
      corner.appendChild(document.createTextNode(" \u2192"));
      top.appendChild(corner);
      shown.forEach(function (column) {
        var th = el("th");
        th.scope = "col";
        th.appendChild(el("span", "db", dbs[column][0]));
        if (dbs[column][1] !== null) th.appendChild(el("span", "owner", dbs[column][1]));
        top.appendChild(th);
      });
      head.appendChild(top);
      var body = el("tbody");
      if (shown.length) {
        rows.forEach(function (row) {
          var tr = el("tr", row === publicRow ? "public-row" : null);
          var th = el("th", null, names[row]);
          th.scope = "row";
          tr.appendChild(th);
          shown.forEach(function (column) { tr.appendChild(cellNode(row, column)); });
          body.appendChild(tr);
        });
      }
      grid.appendChild(head);
      grid.appendChild(body);

      var count = part("count");
      count.textContent = columns.length
        ? "Databases " + fmt(page * MATRIX_COLUMNS + 1) + "\u2013" +
          fmt(page * MATRIX_COLUMNS + shown.length) + " of " + fmt(columns.length) +
          " shown (" + fmt(dbs.length) + " in total)" +
          (hidden ? "; " + fmt(hidden) + " more rows not shown: narrow by app." : ".")
        : "No database matches.";
      count.dataset.columns = String(columns.length);
      count.dataset.rows = String(rows.length);
      part("page").textContent = "Page " + fmt(page + 1) + " of " + fmt(pages);
      part("previous").disabled = page === 0;
      part("next").disabled = page >= pages - 1;
    }

    var timer = null;
    ["database", "reacher"].forEach(function (role) {
      part(role).addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { page = 0; draw(); }, 120);
      });
    });
    part("exposed").addEventListener("change", function () { page = 0; draw(); });
    part("previous").addEventListener("click", function () { page--; draw(); });
    part("next").addEventListener("click", function () { page++; draw(); });
    draw();
    box.hidden = false;
  }

  // ---- filter controls ------------------------------------------------------
  function counts(column, size) {
    var out = new Array(size).fill(0), other = 0;
    for (var i = 0; i < n; i++) {
      var v = F[i][column];
      if (v >= 0) out[v]++; else other++;
    }
    out.other = other;
    return out;
  }

  function chips(fieldset, names, column, flags, prefix) {
    var c = counts(column, names.length);
    names.forEach(function (name, index) {
      var label = el("label", "chip " + prefix + "-" + name);
      var box = el("input");
      box.type = "checkbox"; box.checked = flags[index]; box.value = String(index);
      box.dataset.name = name;
      box.addEventListener("change", function () { flags[index] = box.checked; refilter(); });
      label.appendChild(box);
      label.appendChild(el("span", prefix === "sev" ? "sev sev-" + name : "st status-" + name, name));
      label.appendChild(el("span", "n", fmt(c[index])));
      fieldset.appendChild(label);
    });
  }

  function options(select, labels, column) {
    var c = counts(column, labels.length);
    labels.forEach(function (label, index) {
      if (!c[index]) return;
      var option = el("option", null, label + " (" + fmt(c[index]) + ")");
      option.value = String(index);
      select.appendChild(option);
    });
    if (column === APP && !c.other) select.querySelector('option[value="-1"]').remove();
    select.addEventListener("change", function () { refilter(); });
  }

  function ruleLabel(rule) {
    var title = rule.title.length > 64 ? rule.title.slice(0, 63) + "…" : rule.title;
    return rule.id + " · " + title;
  }

  // ---- filtering --------------------------------------------------------------
  // The search index: one lower-case string per finding. Built in slices after the
  // first render, so the page opens at once and the first search does not pay for it.
  var indexed = 0, INDEX_SLICE = 5000;
  function indexUpTo(limit) {
    if (!haystack) haystack = new Array(n);
    for (; indexed < limit; indexed++) {
      var f = F[indexed], rule = rules[f[RULE]];
      haystack[indexed] = [rule.id, rule.title, data.servers[f[SERVER]],
        f[APP] >= 0 ? data.apps[f[APP]] : "", f[RESOURCE], f[PRINCIPAL] || "", f[MESSAGE],
        f[REMEDIATION] || "", f[EVIDENCE] ? JSON.stringify(f[EVIDENCE]) : "",
        f[WAIVER] ? f[WAIVER].join(" ") : "", f[FINGERPRINT]].join("\n").toLowerCase();
    }
  }
  function indexInBackground() {
    indexUpTo(Math.min(n, indexed + INDEX_SLICE));
    if (indexed < n) setTimeout(indexInBackground, 0);
    else document.body.dataset.indexed = String(n);
  }

  function refilter() {
    var started = performance.now();
    state.server = $("pgw-server").value;
    state.app = $("pgw-app-filter").value;
    state.rule = $("pgw-rule").value;
    var terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    if (terms.length && indexed < n) indexUpTo(n);
    var server = state.server === "" ? null : +state.server;
    var app = state.app === "" ? null : +state.app;
    var rule = state.rule === "" ? null : +state.rule;
    var out = [], fams = {};
    outer: for (var i = 0; i < n; i++) {
      var f = F[i];
      if (!state.sev[f[SEV]] || !state.status[f[STATUS]]) continue;
      if (server !== null && f[SERVER] !== server) continue;
      if (app !== null && f[APP] !== app) continue;
      if (rule !== null && f[RULE] !== rule) continue;
      for (var t = 0; t < terms.length; t++) {
        if (haystack[i].indexOf(terms[t]) < 0) continue outer;
      }
      out.push(i);
      var family = rules[f[RULE]].family;
      fams[family] = (fams[family] || 0) + 1;
    }
    filtered = out; familyCounts = fams; state.page = 0;
    var took = performance.now() - started;
    render();
    document.body.dataset.filterMs = took.toFixed(1);
  }

  // ---- rendering ---------------------------------------------------------------
  function familyHeader(family, continued) {
    var info = data.families[family];
    var head = el("h3", "family", info[1]);
    head.appendChild(el("span", "rule-id", info[0]));
    head.appendChild(el("span", "n", plural(familyCounts[family] || 0, "finding") +
      (continued ? " (continued)" : "")));
    return head;
  }

  function findingRow(index) {
    var f = F[index], rule = rules[f[RULE]];
    var sev = data.severities[f[SEV]], status = data.statuses[f[STATUS]];
    var details = el("details", "finding sev-" + sev + " status-" + status +
      (f[BASELINE] === "absent" ? " gone" : ""));
    details.dataset.index = String(index);
    var summary = el("summary");
    summary.appendChild(el("span", "sev sev-" + sev, sev));
    summary.appendChild(el("span", "st status-" + status, status));
    summary.appendChild(el("span", "rule-id", rule.id));
    var what = el("span", "what");
    what.appendChild(el("span", "res", f[RESOURCE]));
    if (f[PRINCIPAL] && f[PRINCIPAL] !== f[RESOURCE]) {
      what.appendChild(el("span", "where", "  ← " + f[PRINCIPAL]));
    }
    what.appendChild(el("span", "where", "  · " + data.servers[f[SERVER]] +
      (f[APP] >= 0 ? " / " + data.apps[f[APP]] : "")));
    if (f[BASELINE]) {
      what.appendChild(el("span", "tag " + f[BASELINE], BASELINE_LABELS[f[BASELINE]]));
    }
    what.appendChild(el("span", "msg", f[MESSAGE]));
    summary.appendChild(what);
    details.appendChild(summary);
    details.addEventListener("toggle", function () { if (details.open) fillBody(details); });
    return details;
  }

  function section(parent, title) {
    parent.appendChild(el("h4", null, title));
  }

  // Rule docstrings mark code as ``name``; show it as code, still only as text.
  function paragraphs(parent, text) {
    String(text).split(/\n\s*\n/).forEach(function (chunk) {
      var p = el("p");
      chunk.split(/``(.+?)``/).forEach(function (part, i) {
        p.appendChild(i % 2 ? el("code", null, part) : document.createTextNode(reveal(part)));
      });
      parent.appendChild(p);
    });
  }

  function shown(value) {
    if (typeof value === "string") return value;
    var flat = Array.isArray(value) && value.every(function (v) {
      return v === null || typeof v !== "object";
    });
    return flat ? JSON.stringify(value) : JSON.stringify(value, null, 2);
  }

  function evidenceTable(evidence) {
    var table = el("table", "evidence");
    Object.keys(evidence).forEach(function (key) {
      var row = el("tr"), value = evidence[key];
      row.appendChild(el("th", null, key));
      row.appendChild(el("td", null, shown(value)));
      table.appendChild(row);
    });
    return table;
  }

  function fixBlock(text) {
    var box = el("div", "fix");
    box.appendChild(el("pre", null, text));
    var button = el("button", null, "Copy");
    button.type = "button";
    button.title = "Copy the remediation to the clipboard";
    button.addEventListener("click", function () { copy(text, button); });
    box.appendChild(button);
    return box;
  }

  function fillBody(details) {
    if (details.dataset.filled) return;
    details.dataset.filled = "1";
    var f = F[+details.dataset.index], rule = rules[f[RULE]];
    var body = el("div", "body");
    section(body, "Finding");
    body.appendChild(el("p", null, f[MESSAGE]));
    var facts = [["Server", data.servers[f[SERVER]]]];
    if (f[APP] >= 0) facts.push(["App", data.apps[f[APP]]]);
    facts.push(["Resource", f[RESOURCE]]);
    if (f[PRINCIPAL]) facts.push(["Principal", f[PRINCIPAL]]);
    if (f[BASELINE] === "absent") {
      facts.push(["Baseline", "absent: in the baseline, no longer found by this scan"]);
    } else if (f[BASELINE]) {
      facts.push(["Baseline", f[BASELINE]]);
    }
    if (f[FIRST_SEEN]) {
      facts.push(["First seen", f[FIRST_SEEN] +
        (f[AGE] ? " (" + f[AGE] + " before this scan)" : "")]);
    }
    facts.push(["Fingerprint", f[FINGERPRINT]]);
    var table = el("table", "evidence");
    facts.forEach(function (fact) {
      var row = el("tr");
      row.appendChild(el("th", null, fact[0]));
      row.appendChild(el("td", null, fact[1]));
      table.appendChild(row);
    });
    body.appendChild(table);
    if (f[WAIVER]) {
      section(body, "Waiver");
      var waiver = el("div", "waiver");
      waiver.appendChild(el("p", null, f[WAIVER][0]));
      waiver.appendChild(el("p", "small muted",
        "Owner " + f[WAIVER][1] + " · expires " + f[WAIVER][2]));
      body.appendChild(waiver);
    }
    if (f[EVIDENCE] && Object.keys(f[EVIDENCE]).length) {
      section(body, "Evidence");
      body.appendChild(evidenceTable(f[EVIDENCE]));
    }
    var fix = f[REMEDIATION] || rule.remediation;
    if (fix) {
      section(body, "Remediation");
      body.appendChild(fixBlock(fix));
    }
    if (rule.description) {
      section(body, "Why it matters");
      paragraphs(body, rule.description);
    }
    section(body, "Rule");
    var about = el("p", null, rule.id + " · " + rule.title + " · default severity " +
      rule.severity);
    body.appendChild(about);
    if (rule.frameworks.length) {
      body.appendChild(el("p", "small", "Frameworks: " + rule.frameworks.join(" · ")));
    }
    var href = safeHref(rule.help);
    if (href) {
      var link = el("a", null, "Rule documentation");
      link.href = href; link.rel = "noopener noreferrer";
      var p = el("p", "small"); p.appendChild(link); body.appendChild(p);
    }
    details.appendChild(body);
  }

  function copy(text, button) {
    function done(label) {
      button.textContent = label;
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    }
    // The selection route works synchronously inside the click, from file:// and in
    // mail viewers alike; the asynchronous Clipboard API is the fallback, because it
    // may wait forever for focus or a permission prompt.
    var area = el("textarea");
    area.value = text; area.style.position = "fixed"; area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    if (ok) { done("Copied"); return; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done("Copied"); },
        function () { done("Select and copy"); });
    } else {
      done("Select and copy");
    }
  }

  function renderRange(start, end, expanded) {
    var list = $("pgw-list");
    list.textContent = "";
    var fragment = document.createDocumentFragment();
    var lastFamily = -1;
    for (var k = start; k < end; k++) {
      var family = rules[F[filtered[k]][RULE]].family;
      if (family !== lastFamily) {
        var continued = k === start && k > 0 &&
          rules[F[filtered[k - 1]][RULE]].family === family;
        fragment.appendChild(familyHeader(family, continued));
        lastFamily = family;
      }
      var row = findingRow(filtered[k]);
      if (expanded) { fillBody(row); row.open = true; }
      fragment.appendChild(row);
    }
    if (!filtered.length) {
      fragment.appendChild(el("p", "empty", n ? "No finding matches these filters." :
        "No findings: nothing failed, errored or was waived."));
    }
    list.appendChild(fragment);
  }

  function render() {
    var pages = Math.max(1, Math.ceil(filtered.length / state.size));
    if (state.page >= pages) state.page = pages - 1;
    var start = state.page * state.size;
    var end = Math.min(filtered.length, start + state.size);
    renderRange(start, end, false);
    var count = $("pgw-count");
    count.textContent = filtered.length
      ? "Showing " + fmt(start + 1) + "–" + fmt(end) + " of " +
        plural(filtered.length, "matching finding") + " (" + fmt(n) + " in total)"
      : "0 of " + plural(n, "finding") + " match.";
    count.dataset.matching = String(filtered.length);
    count.dataset.shown = String(end - start);
    $("pgw-page").textContent = "Page " + fmt(state.page + 1) + " of " + fmt(pages);
    $("pgw-prev").disabled = state.page === 0;
    $("pgw-next").disabled = state.page >= pages - 1;
    $("pgw-pager").hidden = filtered.length <= state.size;
  }

  // ---- wiring --------------------------------------------------------------------
  chips($("pgw-severity"), data.severities, SEV, state.sev, "sev");
  chips($("pgw-status"), data.statuses, STATUS, state.status, "status");
  options($("pgw-server"), data.servers, SERVER);
  options($("pgw-app-filter"), data.apps, APP);
  options($("pgw-rule"), rules.map(ruleLabel), RULE);

  var search = $("pgw-search"), timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.q = search.value; refilter(); }, 120);
  });
  $("pgw-filters").addEventListener("submit", function (event) { event.preventDefault(); });
  $("pgw-reset").addEventListener("click", function () {
    search.value = ""; state.q = "";
    ["pgw-server", "pgw-app-filter", "pgw-rule"].forEach(function (id) { $(id).value = ""; });
    document.querySelectorAll("#pgw-filters input[type=checkbox]").forEach(function (box) {
      box.checked = shownByDefault(box.dataset.name);
    });
    // In place: the checkboxes' handlers hold these arrays.
    state.sev.fill(true);
    data.statuses.forEach(function (status, index) {
      state.status[index] = shownByDefault(status);
    });
    refilter();
  });
  $("pgw-prev").addEventListener("click", function () { state.page--; render(); });
  $("pgw-next").addEventListener("click", function () { state.page++; render(); });
  $("pgw-size").addEventListener("change", function () {
    state.size = +$("pgw-size").value; state.page = 0; render();
  });
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.key === "/" && !/^(INPUT|SELECT|TEXTAREA)$/.test(tag)) {
      event.preventDefault(); search.focus();
    }
  });
  window.addEventListener("beforeprint", function () {
    renderRange(0, Math.min(filtered.length, PRINT_LIMIT), true);
    if (filtered.length > PRINT_LIMIT) {
      $("pgw-list").appendChild(el("p", "empty", "Printed the first " + fmt(PRINT_LIMIT) +
        " of " + plural(filtered.length, "matching finding") + "; narrow the filters to print others."));
    }
  });
  window.addEventListener("afterprint", render);

  // ---- compliance: one framework at a time (all of them without scripts) -----------
  var picker = $("pgw-framework");
  if (picker) {
    var frameworks = document.querySelectorAll("#compliance .framework");
    var showFramework = function () {
      frameworks.forEach(function (block) {
        block.hidden = block.dataset.framework !== picker.value;
      });
    };
    picker.addEventListener("change", showFramework);
    $("pgw-framework-picker").hidden = false;
    showFramework();
  }

  document.querySelectorAll(".explorer[data-matrix]").forEach(function (box) {
    explorer(box, data.matrices[+box.dataset.matrix]);
  });
  $("pgw-app").hidden = false;
  refilter();
  setTimeout(indexInBackground, 0);
})();
