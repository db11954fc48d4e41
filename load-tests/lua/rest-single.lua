-- REST single question: GET with a different INSZ each time (from inszs.txt, one per line), so the
-- lookups spread over the index instead of hitting one cache line.
local inszs = {}
for line in io.lines(os.getenv("KBI_INSZ_FILE") or "inszs.txt") do inszs[#inszs + 1] = line end
local i = 0
wrk.headers["X-Client-Id"] = "demo"
request = function()
    i = i % #inszs + 1
    return wrk.format("GET", "/v1/integration-obligation/" .. inszs[i] .. "?date=2026-01-01")
end
