-- POST one of several prebuilt bodies (files named by KBI_BODIES, separated by ':'), in turn:
-- SOAP single, SOAP batch of 100, REST batch of 1,000.
local bodies = {}
for path in string.gmatch(os.getenv("KBI_BODIES"), "[^:]+") do
    local f = assert(io.open(path, "rb"))
    bodies[#bodies + 1] = f:read("*a")
    f:close()
end
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("KBI_CONTENT_TYPE") or "text/xml; charset=utf-8"
wrk.headers["X-Client-Id"] = "demo"
local i = 0
request = function()
    i = i % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[i])
end
