#!/usr/bin/env bash
# The demo: from nothing to 20 CRM records with AI-written summaries, on the embedded PostgreSQL
# and Redis and the bundled provider simulator. Everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh

port=${ONEO_DEMO_PORT:-8000}
sim_port=${ONEO_DEMO_SIM_PORT:-18080}
data=.oneo/demo
api="http://127.0.0.1:$port/api/v1"

echo "==> building (the first build fetches and compiles dependencies: a few minutes)"
mkdir -p .oneo
if ! swift build --product oneo-ai >.oneo/build.log 2>&1 || ! swift build --product oneo-ai-sim >>.oneo/build.log 2>&1 \
    || ! swift build --product oneo-tool >>.oneo/build.log 2>&1; then
    tail -30 .oneo/build.log >&2
    echo "error: build failed; full log in .oneo/build.log" >&2
    exit 1
fi
bin=$(swift build --show-bin-path)

for p in "$port" "$sim_port"; do
    if curl -s -o /dev/null "http://127.0.0.1:$p/"; then
        echo "error: port $p is in use; set ONEO_DEMO_PORT / ONEO_DEMO_SIM_PORT to free ports" >&2
        exit 1
    fi
done

rm -rf "$data"
mkdir -p "$data/logs"
serve_pid=""
sim_pid=""
stop() {
    [ -z "$serve_pid" ] || { kill -TERM "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; }
    [ -z "$sim_pid" ] || { kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
}
trap stop EXIT

echo "==> starting the provider simulator on 127.0.0.1:$sim_port"
"$bin/oneo-ai-sim" --port "$sim_port" >"$data/logs/simulator.log" 2>&1 &
sim_pid=$!
echo "==> starting oneo-ai serve (embedded PostgreSQL + Redis under $data, API on 127.0.0.1:$port)"
# The demo shortens the retry delay (the reference's RETRY_DELAY, 60 s by default) to 1 s, so
# that the retry it shows happens while you watch.
ONEO_QUEUE_RETRY_DELAY_MS=1000 "$bin/oneo-ai" serve --data-dir "$data" --port "$port" \
    --search-url "http://127.0.0.1:$sim_port/searxng" --allow-private-providers >"$data/logs/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$serve_pid" 2>/dev/null || { echo "error: serve exited; its log:" >&2; tail -20 "$data/logs/serve.log" >&2; exit 1; }
    sleep 0.25
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "error: API not up after 60 s; see $data/logs/serve.log" >&2; exit 1; }

echo "==> tenant acme, its provider key (for the simulator) and an API token"
umask 077
printf 'demo-simulator-key\n' >"$data/acme.key"
"$bin/oneo-ai" tenant add acme --name "Acme Corp" --data-dir "$data" \
    --api-key-file "$data/acme.key" --base-url "http://127.0.0.1:$sim_port/v1" --model gpt-4o-mini
token=$("$bin/oneo-ai" token create --tenant acme --permissions read,create --data-dir "$data" | tail -1)
auth="Authorization: Bearer $token"

call() { # METHOD PATH [BODY]
    curl -sS -f -X "$1" "$api$2" -H "$auth" -H "Content-Type: application/json" ${3:+-d "$3"}
}

echo "==> pipeline leads: name, company, industry, email, ssn, and the AI field ai_summary"
call POST /pipelines/ '{"name": "Leads", "slug": "leads"}' >/dev/null
for field in Name:name Company:company Industry:industry Email:email SSN:ssn; do
    call POST /pipelines/leads/fields/ "{\"name\": \"${field%%:*}\", \"slug\": \"${field##*:}\", \"field_type\": \"text\"}" >/dev/null
done
call POST /pipelines/leads/fields/ '{"name": "AI Summary", "slug": "ai_summary", "field_type": "ai_generated",
  "ai_config": {"model": "gpt-4o-mini", "prompt": "Create a brief summary of this customer: {*}", "excluded_fields": ["ssn"]}}' >/dev/null

echo "==> inserting 20 records"
python3 - "$api" "$token" <<'PY'
import json, sys, urllib.request
api, token = sys.argv[1], sys.argv[2]
people = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra",
          "Barbara Liskov", "Donald Knuth", "Margaret Hamilton", "Ken Thompson", "Frances Allen",
          "John Backus", "Radia Perlman", "Leslie Lamport", "Shafi Goldwasser", "Tony Hoare",
          "Hedy Lamarr", "Dennis Ritchie", "Adele Goldberg", "Niklaus Wirth", "Sophie Wilson"]
companies = [("Initech", "Software"), ("Globex", "Energy"), ("Umbrella", "Pharma"), ("Hooli", "Internet"),
             ("Stark Industries", "Manufacturing")]
for i, name in enumerate(people):
    company, industry = companies[i % len(companies)]
    data = {"name": name, "company": company, "industry": industry,
            "email": name.lower().replace(" ", ".") + "@" + company.lower().replace(" ", "") + ".example",
            "ssn": "900-%02d-%04d" % (i + 10, 1000 + i)}
    request = urllib.request.Request(api + "/pipelines/leads/records/", method="POST",
        data=json.dumps({"data": data}).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
PY

echo "==> waiting for the AI fields"
for _ in $(seq 1 240); do
    done_count=$(call GET "/ai-jobs/?status=completed&page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
    printf '\r    %2d/20 filled' "$done_count"
    [ "$done_count" -ge 20 ] && break
    sleep 0.25
done
echo
[ "$done_count" -ge 20 ] || { echo "error: only $done_count of 20 filled after 60 s; see $data/logs/serve.log" >&2; exit 1; }

echo "==> three of the records"
for id in 1 2 3; do
    call GET "/pipelines/leads/records/$id/" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("  record %d (version %d)" % (r["id"], r["version"]))
for k in ["name", "company", "industry", "email", "ssn", "ai_summary"]:
    print("    %-10s %s" % (k, r["data"].get(k)))'
done

echo "==> jobs by status"
for status in pending processing completed failed cancelled; do
    printf '    %-10s %s\n' "$status" "$(call GET "/ai-jobs/?status=$status&page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')"
done
call GET "/ai-jobs/?page_size=20" | python3 -c '
import json, sys
jobs = json.load(sys.stdin)["results"]
tokens = sum(j["tokens_used"] for j in jobs); micros = sum(j["cost_micros"] for j in jobs)
print("    %d jobs, %d tokens, cost %d micro-dollars ($%.6f)" % (len(jobs), tokens, micros, micros / 1e6))'

echo "==> a second AI field over the first, and a provider that fails it: generate on record 1"
# ai_pitch names ai_summary, so it runs after it, on its value; the simulator answers its first
# three calls with 503 (two retried in place, then the job is queued again with backoff).
call POST /pipelines/leads/fields/ '{"name": "AI Pitch", "slug": "ai_pitch", "field_type": "ai_generated",
  "ai_config": {"model": "gpt-4o-mini", "prompt": "Write a one-line pitch from {ai_summary} [sim-fault: 503 times=3]"}}' >/dev/null
call POST /pipelines/leads/records/1/generate/ '{"field": "ai_pitch", "wait_ms": 20000}' | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("    job %s: %s after %d attempt(s)" % (j["id"], j["status"], j["attempt"]))
for a in j["attempts"]:
    print("      attempt %d  %-9s %s%s" % (a["attempt"], a["outcome"], a["error_code"] or "", " (%d retried in place)" % a["provider_retries"] if a["provider_retries"] else ""))
print("    ai_pitch   %s" % j["output_data"].get("content"))'

echo "==> a field with the code interpreter: the model's Python runs in a jail of its own (generate on record 2)"
# The simulator plays a model that calls the tool with this code, then answers with its output;
# the code runs in a fresh jail (no network, read-only /usr, tmpfs /work, seccomp allowlist).
call POST /pipelines/leads/fields/ '{"name": "AI Score", "slug": "ai_score", "field_type": "ai_generated",
  "ai_config": {"model": "gpt-4o-mini", "prompt": "Score the lead {name} from 0 to 100. [sim-tool code_interpreter]print(round(85 * 0.9))[/sim-tool]",
                "enable_tools": true, "allowed_tools": ["code_interpreter"], "auto_regenerate": false}}' >/dev/null
call POST /pipelines/leads/records/2/generate/ '{"field": "ai_score", "wait_ms": 20000}' | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("    job %s: %s, cost %d micro-dollars (tokens and the tool fee)" % (j["id"], j["status"], j["cost_micros"]))
for c in j["tool_calls"]:
    print("      tool %s: %d ms, %d bytes back to the model%s" % (c["tool"], c["ms"], c["result_bytes"], (", error: " + c["error"]) if c["error"] else ""))
print("    ai_score   %s" % (j["output_data"].get("content") or "")[:160])'

echo "==> a field with web search, file search and image generation, each call in a jail of its own (generate on record 3)"
# The workspace's handbook for file search; the search backend is the simulator's SearXNG
# stand-in, the image comes from the tenant's own provider with its own key.
call POST /files/ '{"name": "handbook.html", "content": "<h1>Pricing</h1><p>Enterprise plans start at 40 seats with annual billing.</p><script>ignore()</script>"}' >/dev/null
call POST /pipelines/leads/fields/ '{"name": "AI Brief", "slug": "ai_brief", "field_type": "ai_generated",
  "ai_config": {"model": "gpt-4o-mini", "prompt": "Brief on {name}. [sim-tool web_search]{name} news[/sim-tool] [sim-tool file_search]enterprise pricing[/sim-tool] [sim-tool image_generation]a logo for {name}[/sim-tool]",
                "enable_tools": true, "allowed_tools": ["web_search", "file_search", "image_generation"], "auto_regenerate": false}}' >/dev/null
call POST /pipelines/leads/records/3/generate/ '{"field": "ai_brief", "wait_ms": 30000}' | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("    job %s: %s, cost %d micro-dollars (tokens, a search, a file search, an image)" % (j["id"], j["status"], j["cost_micros"]))
for c in j["tool_calls"]:
    print("      tool %-16s %4d ms, %5d bytes back to the model, fee %d%s" % (c["tool"], c["ms"], c["result_bytes"], c.get("cost_micros") or 0, (", error: " + c["error"]) if c["error"] else ""))
for a in j.get("artifacts") or []:
    print("      artifact %s (%s, %d bytes): GET /api/v1/ai-jobs/%s/artifacts/%s" % (a["name"], a["media_type"], a["size"], j["id"], a["name"]))
print("    ai_brief   %s" % (j["output_data"].get("content") or "")[:160])'

echo "==> stopping"
stop
serve_pid=""
sim_pid=""
echo "done: logs in $data/logs"
