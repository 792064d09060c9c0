#!/usr/bin/python3
"""kg_bench_report.py RAW OUTDIR - turn scripts/bench's raw.txt into results.md and plots.

RAW holds one record per line, `key=value` fields separated by spaces:

    meta KEY VALUE...                                  facts about the run (free text value)
    server=kmipgw rep=1 server_cpus=1.10 mix=get conns=4 ops=... p99_ms=... first_error=TEXT
    server=p11 rep=1 op=get threads=8 ops=... ops_per_sec=... errors=0 wrap_key=copy

`first_error=` is always the last field and runs to the end of the line. A point that could
not run at all has `status=...` instead of the kg-bench fields.

Writes OUTDIR/results.md, and OUTDIR/throughput.png and OUTDIR/latency.png with gnuplot
(data passed inline, so no data files are left behind). With BENCH_REPEAT > 1 each point
has several records; every number reported is the median of that number over the records
(per-metric medians, so ops/s and p99 of one row may come from different repetitions).
"""

import os
import statistics
import subprocess
import sys

SERVERS = ("kmipgw", "pykmip", "s_server")
SERVER_TITLES = {"kmipgw": "kmipgw", "pykmip": "PyKMIP", "s_server": "openssl s_server"}
NUMERIC = ("ops", "secs", "ops_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms", "errors", "err_kmip",
           "err_tls", "err_timeout", "err_proto", "unfinished", "client_cpus", "server_cpus", "threads")


def parse(path):
    meta, points, ceiling, events = {}, [], [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("meta "):
                parts = line.split(" ", 2)
                meta[parts[1]] = parts[2] if len(parts) > 2 else ""
                continue
            rec = {}
            rest = line
            if " first_error=" in rest:
                rest, err = rest.split(" first_error=", 1)
                rec["first_error"] = err
            for field in rest.split():
                if "=" in field:
                    k, v = field.split("=", 1)
                    rec[k] = v
            for k in NUMERIC:
                if k in rec:
                    try:
                        rec[k] = float(rec[k])
                    except ValueError:
                        rec[k] = float("nan")
            if rec.get("event"):
                events.append(rec)
            elif rec.get("server") == "p11":
                ceiling.append(rec)
            elif "server" in rec:
                points.append(rec)
    return meta, points, ceiling, events


def median(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def group(points, events):
    """(server, mix, conns) -> merged record of medians, plus run counts. An event
    `died-after-point` marks the point it names with the server's death."""
    by_key = {}
    for p in points:
        key = (p["server"], p.get("mix", "?"), int(float(p.get("conns", 0))))
        by_key.setdefault(key, []).append(p)
    merged = {}
    for key, recs in by_key.items():
        ran = [r for r in recs if "status" not in r]
        m = {"runs": len(recs), "ran": len(ran),
             "died": [r["server_died"] for r in recs if r.get("server_died")]}
        if ran:
            for k in NUMERIC:
                if any(k in r for r in ran):
                    m[k] = median([r.get(k, float("nan")) for r in ran])
            # Errors are summed, not medianed: one bad repetition must show.
            for k in ("errors", "err_kmip", "err_tls", "err_timeout", "err_proto"):
                m[k] = sum(r.get(k, 0.0) for r in ran)
            m["tls"] = ran[0].get("tls", "-")
            m["first_error"] = next((r["first_error"] for r in ran if r.get("first_error")), "")
        else:
            m["status"] = recs[0].get("status", "not run")
        merged[key] = m
    for e in events:
        key = (e["server"], e.get("mix", "?"), int(float(e.get("conns", 0))))
        if key in merged and e.get("server_died"):
            merged[key]["died"].append(e["server_died"] + " just after")
    return merged


def fmt_rate(m):
    if m is None:
        return "—"
    if "status" in m:
        return "not run (%s)" % m["status"]
    ops = m.get("ops_per_sec", float("nan"))
    if m.get("ops", 0) == 0:
        return "0 (all failed)" if m.get("errors", 0) else "0"
    return "%.0f" % ops if ops >= 100 else "%.1f" % ops


def fmt_ms(m, key="p99_ms"):
    if m is None or "status" in m or m.get("ops", 0) == 0:
        return "—"
    v = m.get(key, float("nan"))
    if v != v:
        return "—"
    return "%.1f" % v if v >= 10 else "%.2f" % v


def fmt_errors(m):
    if m is None:
        return "—"
    died = " **server died (%s)**" % ", ".join(m["died"]) if m.get("died") else ""
    if "status" in m:
        return "—" + died
    n = int(m.get("errors", 0))
    if n == 0:
        return "0" + died
    kinds = [("kmip", "err_kmip"), ("tls", "err_tls"), ("timeout", "err_timeout"), ("proto", "err_proto")]
    return "%d (%s)%s" % (n, ", ".join("%s %d" % (name, int(m[k])) for name, k in kinds if m.get(k, 0)), died)


def fmt_num(m, key):
    v = m.get(key, float("nan"))
    return "—" if v != v else "%.2f" % v


def ratio(a, b):
    if a is None or b is None or "status" in a or "status" in b:
        return "—"
    x, y = a.get("ops_per_sec", 0.0), b.get("ops_per_sec", 0.0)
    if not y or y != y or x != x or a.get("ops", 0) == 0:
        return "n/a"
    return "%.1f×" % (x / y) if x / y < 100 else "%.0f×" % (x / y)


def clean_cell(text):
    return text.replace("|", "\\|")


def write_markdown(meta, merged, ceiling, out):
    mixes = []
    conns = sorted({k[2] for k in merged})
    for k in sorted(merged, key=lambda k: k[2]):
        if k[0] in ("kmipgw", "pykmip") and k[1] not in mixes:
            mixes.append(k[1])
    order = ["get", "create", "get-attributes", "locate", "vsphere-task", "handshake"]
    mixes.sort(key=lambda m: order.index(m) if m in order else 99)

    L = []
    L.append("# kmipgw benchmark")
    L.append("")
    L.append("Written by `scripts/bench` on %s. Raw records: `raw.txt`; tool messages: `bench.log`." %
             meta.get("date", "?"))
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for key, title in (("commit", "kmipgw commit"), ("build", "build"), ("kmipgw_server", "kmipgw server"),
                       ("kmipgw_config", "kmipgw configuration"),
                       ("machine", "machine"), ("load_before", "load average before"),
                       ("load_after", "load average after"), ("kernel", "kernel"), ("openssl", "OpenSSL"),
                       ("softhsm", "SoftHSM"), ("pykmip", "PyKMIP"), ("store_fs", "devenv file system"),
                       ("durations", "durations"), ("repeat", "repetitions"), ("wall", "wall time"),
                       ("crashes_kmipgw", "kmipgw crashes (restarted)"),
                       ("crashes_pykmip", "PyKMIP crashes (restarted)"),
                       ("crashes_s_server", "s_server crashes (restarted)")):
        if key in meta:
            L.append("| %s | %s |" % (title, clean_cell(meta[key])))
    L.append("")

    L.append("## kmipgw and PyKMIP, same load, same machine")
    L.append("")
    L.append("Closed loop: each connection sends a request and waits for its answer. ops/s counts "
             "successful operations only; p99 is their 99th-percentile latency. A vsphere-task operation "
             "is a whole vCenter task (new TLS connection, Discover Versions, Create, 3× Add Attribute "
             "in one batch, close); a handshake operation is connect + mutual-TLS handshake + close.")
    L.append("")
    L.append("| mix | connections | kmipgw ops/s | kmipgw p99 ms | PyKMIP ops/s | PyKMIP p99 ms | ratio | errors kmipgw / PyKMIP |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for mix in mixes:
        for c in conns:
            g = merged.get(("kmipgw", mix, c))
            p = merged.get(("pykmip", mix, c))
            if g is None and p is None:
                continue
            L.append("| %s | %d | %s | %s | %s | %s | %s | %s / %s |" % (
                mix, c, fmt_rate(g), fmt_ms(g), fmt_rate(p), fmt_ms(p), ratio(g, p), fmt_errors(g),
                fmt_errors(p)))
    L.append("")
    L.append("— : not measured (PyKMIP runs a subset to keep the wall time down). ratio = kmipgw ops/s ÷ "
             "PyKMIP ops/s.")
    L.append("")

    hs = [c for c in conns if ("s_server", "handshake", c) in merged]
    if hs:
        L.append("## Handshakes: kmipgw against `openssl s_server`")
        L.append("")
        L.append("`openssl s_server -rev` with kmipgw's server certificate, `-Verify 1 -verify_return_error "
                 "-CAfile ca.crt` (mutual TLS), same client. s_server is single-threaded and serves one "
                 "connection at a time: it is a per-handshake cost reference, not a concurrency one.")
        L.append("")
        L.append("| connections | kmipgw handshakes/s | kmipgw p99 ms | s_server handshakes/s | s_server p99 ms | kmipgw ÷ s_server |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        for c in hs:
            g = merged.get(("kmipgw", "handshake", c))
            s = merged.get(("s_server", "handshake", c))
            L.append("| %d | %s | %s | %s | %s | %s |" % (c, fmt_rate(g), fmt_ms(g), fmt_rate(s), fmt_ms(s),
                                                          ratio(g, s)))
        L.append("")

    if ceiling:
        L.append("## Raw PKCS#11 ceiling of kmipgw's token")
        L.append("")
        L.append("`kg-p11-ceiling` on the same SoftHSM token, no TLS, no KMIP, no SQLite: only the PKCS#11 "
                 "calls one request makes. get = C_UnwrapKey (CKM_AES_KEY_WRAP_PAD) + "
                 "C_GetAttributeValue(CKA_VALUE) + C_DestroyObject; get-sealed = every call kmipgw's "
                 "plaintext Get makes: get plus the session check, the blob MAC verified in the HSM "
                 "(HMAC-SHA256) and the read-back of the unwrapped key's flags; create = C_GenerateKey "
                 "(AES-256 session key) + C_WrapKey + C_DestroyObject. Wrapping key: %s." % {
                     "copy": "a session copy of the gateway's master wrapping key, as kmipgw uses it",
                     "token": "the gateway's master wrapping key (token object)",
                 }.get(ceiling[0].get("wrap_key"), "a session key (MWK not found)"))
        L.append("")
        threads = sorted({int(r["threads"]) for r in ceiling})
        L.append("| path | " + " | ".join("%d thread%s ops/s" % (t, "" if t == 1 else "s") for t in threads) +
                 " | best kmipgw ops/s (same mix) | kmipgw ÷ ceiling |")
        L.append("|---|" + "---:|" * len(threads) + "---:|---:|")
        for op in ("get", "get-sealed", "create"):
            recs = [r for r in ceiling if r.get("op") == op]
            mix = op.split("-")[0]  # get-sealed is the get mix's ceiling too
            if not recs:
                continue
            cells, best_ceiling = [], 0.0
            for t in threads:
                rs = [r for r in recs if int(r["threads"]) == t]
                v = median([r["ops_per_sec"] for r in rs]) if rs else float("nan")
                errs = sum(r.get("errors", 0) for r in rs)
                best_ceiling = max(best_ceiling, v if v == v else 0.0)
                cells.append(("%.0f" % v) + (" (%d failed calls)" % errs if errs else ""))
            best_gw = max((m.get("ops_per_sec", 0.0) for k, m in merged.items()
                           if k[0] == "kmipgw" and k[1] == mix and "status" not in m), default=0.0)
            share = "%.0f%%" % (100.0 * best_gw / best_ceiling) if best_ceiling and best_gw else "—"
            L.append("| %s | %s | %s | %s |" % (op, " | ".join(cells), "%.0f" % best_gw if best_gw else "—",
                                                share))
        L.append("")

    L.append("## Every point")
    L.append("")
    L.append("client CPUs / server CPUs: CPU seconds per wall second of kg-bench and of the server process "
             "over the whole point (pool set-up and warm-up included). When they add up to the machine's "
             "CPU count, the machine, not the server, is the limit.")
    L.append("")
    L.append("| server | mix | conns | ops/s | p50 ms | p99 ms | p99.9 ms | errors | client CPUs | server CPUs | TLS | runs |")
    L.append("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|")
    for server in SERVERS:
        for mix in mixes + (["handshake"] if "handshake" not in mixes else []):
            for c in conns:
                m = merged.get((server, mix, c))
                if m is None:
                    continue
                L.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                    SERVER_TITLES[server], mix, c, fmt_rate(m), fmt_ms(m, "p50_ms"), fmt_ms(m), fmt_ms(m, "p999_ms"),
                    fmt_errors(m), fmt_num(m, "client_cpus"), fmt_num(m, "server_cpus"), m.get("tls", "—"),
                    m["runs"]))
    L.append("")
    errs = [(k, m["first_error"]) for k, m in sorted(merged.items()) if m.get("first_error")]
    if errs:
        L.append("First error message of each point that had errors:")
        L.append("")
        for (server, mix, c), text in errs:
            L.append("- %s %s %d: `%s`" % (SERVER_TITLES.get(server, server), mix, c, text.replace("`", "'")))
        L.append("")
    notes = meta.get("notes")
    if notes:
        L.append("## Reading these numbers")
        L.append("")
        for n in notes.split(" || "):
            L.append("- " + n)
        L.append("")
    L.append("![throughput](throughput.png)")
    L.append("")
    L.append("![latency](latency.png)")
    L.append("")
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(L))
    return mixes


def plot(merged, mixes, out):
    """One panel per mix; x = connections (log 2), one line per server."""
    blocks, panels = [], []
    for i, mix in enumerate(mixes):
        for server in SERVERS:
            rows = sorted((k[2], m) for k, m in merged.items()
                          if k[0] == server and k[1] == mix and "status" not in m and m.get("ops", 0) > 0)
            if not rows:
                continue
            name = "$d_%d_%s" % (i, server)
            blocks.append("%s << EOD\n%s\nEOD" % (name, "\n".join(
                "%d %.3f %.3f" % (c, m["ops_per_sec"], m["p99_ms"]) for c, m in rows)))
            panels.append((i, mix, server, name))
    if not panels:
        return
    cols = 2
    nrows = (len(mixes) + cols - 1) // cols
    for what, col, ylabel, fname in (("throughput", 2, "ops/s", "throughput.png"),
                                     ("p99 latency", 3, "p99 latency (ms)", "latency.png")):
        g = ["set terminal pngcairo noenhanced size %d,%d font ',10'" % (1100, 400 * nrows),
             "set output '%s'" % os.path.join(out, fname).replace("'", "''")]
        g += blocks
        g += ["set multiplot layout %d,%d title 'kmipgw vs PyKMIP: %s vs connections'" % (nrows, cols, what),
              "set logscale x 2", "set logscale y", "set grid", "set key below horizontal",
              "set xlabel 'connections'", "set ylabel '%s'" % ylabel, "set xrange [0.8:*]"]
        for i, mix in enumerate(mixes):
            series = [p for p in panels if p[0] == i]
            g.append("set title '%s'" % mix)
            if not series:
                g.append("unset key; plot 1/0 notitle; set key below horizontal")
                continue
            g.append("plot " + ", ".join("%s using 1:%d with linespoints lw 2 pt 7 title '%s'" % (
                name, col, SERVER_TITLES[server]) for _, _, server, name in series))
        g.append("unset multiplot")
        r = subprocess.run(["gnuplot"], input="\n".join(g) + "\n", text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            sys.stderr.write("gnuplot failed for %s:\n%s\n" % (fname, r.stdout))
            sys.exit(1)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: kg_bench_report.py RAW OUTDIR\n")
        sys.exit(2)
    meta, points, ceiling, events = parse(sys.argv[1])
    merged = group(points, events)
    mixes = write_markdown(meta, merged, ceiling, sys.argv[2])
    plot(merged, mixes, sys.argv[2])


if __name__ == "__main__":
    main()
