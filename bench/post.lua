-- wrk script: POST a JSON chat body, print one JSON line of results in done().
-- The body comes from the BENCH_BODY environment variable (a JSON string).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
  or '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello bench"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, summary.requests / summary.duration * 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout))
end
