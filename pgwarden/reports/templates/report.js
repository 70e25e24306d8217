// pgwarden report: filters, search and pages over the findings embedded as data, the
// access matrices of servers too large for a static table, and the compliance view's
// framework picker.
// Data is only ever written with textContent or as attribute values, never parsed
// as HTML: names come from the audited server and may hold markup.
(function () {
  "use strict";

  // A finding is its key (filters and counts need nothing else) and its details
  // (what a drawn row shows); html_data.py writes both in these orders.
  var KEY_COLUMNS = ["rule", "severity", "status", "server", "app"];
  var DETAIL_COLUMNS = ["resource", "principal", "message", "evidence", "remediation",
    "waiver", "baseline_state", "first_seen", "fingerprint", "age"];
  var RULE = 0, SEV = 1, STATUS = 2, SERVER = 3, APP = 4, KEY = KEY_COLUMNS.length;
  var RESOURCE = 0, PRINCIPAL = 1, MESSAGE = 2, EVIDENCE = 3, REMEDIATION = 4, WAIVER = 5,
    BASELINE = 6, FIRST_SEEN = 7, FINGERPRINT = 8, AGE = 9;
  // Printing renders every matching finding expanded, up to this many.
  var PRINT_LIMIT = 1000;
  var BASELINE_LABELS = { "new": "new", "unchanged": "in baseline", "absent": "no longer found" };

  var data = JSON.parse(document.getElementById("pgw-data").textContent);
  if (data.key_columns.join() !== KEY_COLUMNS.join() ||
      data.detail_columns.join() !== DETAIL_COLUMNS.join()) {
    throw new Error("pgwarden report: unexpected finding columns " +
      data.key_columns.join() + " / " + data.detail_columns.join());
  }
  var keys = data.keys, rules = data.rules, n = keys.length / KEY;
  function key(index, column) { return keys[index * KEY + column]; }
  // Pass records (--include-passed) are evidence, not findings: shown when asked for.
  function shownByDefault(status) { return status !== "pass"; }
  var state = {
    sev: data.severities.map(function () { return true; }),
    status: data.statuses.map(shownByDefault),
    server: "", app: "", rule: "", q: "", page: 0, size: 100
  };
  var filtered = [], familyCounts = {};

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
  // 12,345 as en-US writes it, without Intl: loading its locale data at the first call
  // cost about 30 ms of opening a large report.
  function fmt(x) { return String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
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

  // ---- the findings' details ------------------------------------------------------
  // The first ones come as parsed rows (data.details): the whole of a small report. A
  // large one packs the rest (data.packed): chunks of findings, one JSON row per line,
  // gzip and base64. A chunk is unpacked when a row in it is to be drawn, and all of
  // them in the background once the first page is shown; a packed row is parsed only
  // when it is drawn. The search reads each finding's details as text: haystack[i]
  // holds them as JSON, in lower case (and its rule, server and app by their names).
  var packed = data.packed, plain = data.details.length;
  var parsed = data.details.concat(new Array(n - plain));
  var lines = packed ? new Array(n) : null;
  var perChunk = packed ? packed.findings_per_chunk : 1;
  var chunks = packed ? packed.chunks.length : 0;
  var unpacking = new Array(chunks), ready = new Array(chunks).fill(false);
  var haystack = new Array(n), searchable = !packed;

  function chunkOf(index) { return Math.floor((index - plain) / perChunk); }
  function isReady(index) { return index < plain || ready[chunkOf(index)]; }
  function detail(index) {
    var row = parsed[index];
    if (row === undefined) row = parsed[index] = JSON.parse(lines[index]);
    return row;
  }
  function bytesOf(base64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(base64);
    var text = atob(base64), bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }
  function unpack(chunk) {
    if (!unpacking[chunk]) {
      unpacking[chunk] = Promise.resolve().then(function () {
        var gzip = new Response(bytesOf(packed.chunks[chunk])).body;
        return new Response(gzip.pipeThrough(new DecompressionStream("gzip"))).text();
      }).then(function (text) {
        var part = text.split("\n"), lower = text.toLowerCase().split("\n");
        var first = plain + chunk * perChunk;
        for (var j = 0; j < part.length; j++) {
          lines[first + j] = part[j];
          haystack[first + j] = lower[j];
        }
        packed.chunks[chunk] = null;
        ready[chunk] = true;
      });
    }
    return unpacking[chunk];
  }
  function unpackAll() {
    var all = [];
    for (var chunk = 0; chunk < chunks; chunk++) all.push(unpack(chunk));
    return Promise.all(all).then(function () { searchable = true; });
  }
  // Calls then() once every finding in indexes can be drawn: at once when it can.
  function whenReady(indexes, then) {
    var missing = [];
    indexes.forEach(function (i) {
      var chunk = chunkOf(i);
      if (!isReady(i) && missing.indexOf(chunk) < 0) missing.push(chunk);
    });
    if (!missing.length) { then(); return; }
    Promise.all(missing.map(unpack)).then(then, failed);
  }
  // Once, under the count: the findings drawn so far stay; the others cannot be shown.
  function failed(error) {
    if ($("pgw-failed")) return;
    var note = el("p", "count failed", "This browser could not unpack the findings after " +
      "the first " + fmt(plain) + " (" + error + "): open the report in a current browser, " +
      "or read the results JSON.");
    note.id = "pgw-failed";
    $("pgw-count").after(note);
  }
  // In order, a chunk at a time when the page is idle, so it stays responsive; then
  // searches need no wait.
  var whenIdle = window.requestIdleCallback || function (then) { setTimeout(then, 0); };
  function unpackInBackground() {
    var chunk = 0;
    (function next() {
      if (chunk >= chunks) {
        searchable = true;
        document.body.dataset.indexed = String(n);
        return;
      }
      unpack(chunk++).then(function () { whenIdle(next); }, failed);
    })();
  }
  for (var i = 0; i < plain; i++) haystack[i] = JSON.stringify(parsed[i]).toLowerCase();

  // ---- filter controls ------------------------------------------------------
  function counts(column, size) {
    var out = new Array(size).fill(0), other = 0;
    for (var i = column; i < keys.length; i += KEY) {
      var v = keys[i];
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
  // Each term as it is written inside a JSON string, for the haystack's JSON text.
  function asJson(text) { return JSON.stringify(text).slice(1, -1).toLowerCase(); }
  function searchTerms(query) {
    return query.split(/\s+/).filter(Boolean).map(asJson);
  }
  var ruleText = rules.map(function (rule) {
    return asJson(rule.id) + "\n" + asJson(rule.title);
  });
  var serverText = data.servers.map(asJson), appText = data.apps.map(asJson);
  // Per term, whether each rule, server and app names it.
  function naming(texts, term) {
    return texts.map(function (text) { return text.indexOf(term) >= 0; });
  }

  var filtering = 0;
  function refilter() {
    var run = ++filtering;
    state.server = $("pgw-server").value;
    state.app = $("pgw-app-filter").value;
    state.rule = $("pgw-rule").value;
    var terms = searchTerms(state.q);
    if (terms.length && !searchable) {
      // The newest filter wins: an older one still waiting is dropped.
      unpackAll().then(function () { if (run === filtering) refilter(); }, failed);
      return;
    }
    var started = performance.now();
    var server = state.server === "" ? null : +state.server;
    var app = state.app === "" ? null : +state.app;
    var rule = state.rule === "" ? null : +state.rule;
    var out = [], fams = {};
    var byRule = terms.map(function (term) { return naming(ruleText, term); });
    var byServer = terms.map(function (term) { return naming(serverText, term); });
    var byApp = terms.map(function (term) { return naming(appText, term); });
    outer: for (var i = 0, k = 0; i < n; i++, k += KEY) {
      if (!state.sev[keys[k + SEV]] || !state.status[keys[k + STATUS]]) continue;
      if (server !== null && keys[k + SERVER] !== server) continue;
      if (app !== null && keys[k + APP] !== app) continue;
      if (rule !== null && keys[k + RULE] !== rule) continue;
      for (var t = 0; t < terms.length; t++) {
        if (byRule[t][keys[k + RULE]] || byServer[t][keys[k + SERVER]] ||
            (keys[k + APP] >= 0 && byApp[t][keys[k + APP]])) continue;
        if (haystack[i].indexOf(terms[t]) < 0) continue outer;
      }
      out.push(i);
      var family = rules[keys[k + RULE]].family;
      fams[family] = (fams[family] || 0) + 1;
    }
    filtered = out; familyCounts = fams; state.page = 0;
    document.body.dataset.filterMs = (performance.now() - started).toFixed(1);
    render();
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
    var f = detail(index), rule = rules[key(index, RULE)];
    var sev = data.severities[key(index, SEV)], status = data.statuses[key(index, STATUS)];
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
    what.appendChild(el("span", "where", "  · " + data.servers[key(index, SERVER)] +
      (key(index, APP) >= 0 ? " / " + data.apps[key(index, APP)] : "")));
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
    var index = +details.dataset.index, f = detail(index), rule = rules[key(index, RULE)];
    var body = el("div", "body");
    section(body, "Finding");
    body.appendChild(el("p", null, f[MESSAGE]));
    var facts = [["Server", data.servers[key(index, SERVER)]]];
    if (key(index, APP) >= 0) facts.push(["App", data.apps[key(index, APP)]]);
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
      var family = rules[key(filtered[k], RULE)].family;
      if (family !== lastFamily) {
        var continued = k === start && k > 0 &&
          rules[key(filtered[k - 1], RULE)].family === family;
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

  // The count changes with the rows it describes: when their details are at hand.
  var drawing = 0, shownOnce = false;
  function render() {
    var run = ++drawing;
    var pages = Math.max(1, Math.ceil(filtered.length / state.size));
    if (state.page >= pages) state.page = pages - 1;
    var start = state.page * state.size;
    var end = Math.min(filtered.length, start + state.size);
    whenReady(filtered.slice(start, end), function () {
      if (run !== drawing) return;
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
      if (!shownOnce) {
        shownOnce = true;
        whenIdle(unpackInBackground);
      }
    });
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
  // Printing cannot wait: it prints the findings unpacked so far (all of them, but in
  // the first moments after a large report opens).
  window.addEventListener("beforeprint", function () {
    var limit = Math.min(filtered.length, PRINT_LIMIT), end = 0;
    while (end < limit && isReady(filtered[end])) end++;
    renderRange(0, end, true);
    if (end < limit) {
      $("pgw-list").appendChild(el("p", "empty", "Printed the first " + fmt(end) + " of " +
        plural(filtered.length, "matching finding") + "; the others were still being " +
        "unpacked: print again in a moment."));
    } else if (filtered.length > PRINT_LIMIT) {
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
})();
