-- Managed by redis-ha (Pulumi): the write guard of the VIP proxy, loaded by haproxy.cfg
-- (lua-load; components/proxy-config.ts renders it, assets/vip-proxy.sh installs this file).
--
-- haproxy.cfg sends a new connection to node X only while a majority of sentinels name X
-- (nbsrv(sentinels_name_X)), and `on-marked-down shutdown-sessions` cuts X's sessions when X's
-- own ROLE check fails. Nothing in the configuration cuts the sessions already open on X when
-- the sentinels' majority goes while X still says master: a master demoted while cut off
-- together with this proxy would keep taking its clients' writes. This task does it: every
-- REDIS_HA_GUARD_INTERVAL_MS it counts, per backend sentinels_name_X, the servers that are UP
-- (as nbsrv does) and, below REDIS_HA_GUARD_MAJORITY, shuts all sessions of server X in backend
-- redis_master_X.
--
-- Why Lua: HAProxy's own configuration has no rule that acts on established sessions when
-- another backend changes. `tcp-response content` rules stop once a session is accepted,
-- `track` follows one server (not a count of them), and a check cannot count a majority (every
-- failed step fails it). An external watcher on the admin socket would be one more daemon to
-- keep alive; this task lives and dies with HAProxy, and each reload starts it again with the
-- new configuration. What it uses (core.backends, Proxy.servers, Server:get_stats,
-- Server:shut_sess, core.get_info, core.register_task, core.msleep) is the same in HAProxy 2.6
-- and 3.x.
--
-- Settings come from the environment (setenv in haproxy.cfg's global section, before
-- lua-load), so this file is the same on every node; missing ones fail the configuration check.

local function setting(name)
    local value = tonumber(os.getenv(name) or "")
    if value == nil or value < 1 then
        error(name .. " must be a positive number: setenv it in haproxy.cfg's global section, before lua-load")
    end
    return math.floor(value)
end

local majority = setting("REDIS_HA_GUARD_MAJORITY")
local interval_ms = setting("REDIS_HA_GUARD_INTERVAL_MS")

-- Status "UP", or "UP 1/2" while going down: the servers nbsrv counts (DOWN, "DOWN 1/2" while
-- going up, NOLB, DRAIN and MAINT do not).
local function is_up(server)
    return string.sub(server:get_stats().status or "", 1, 2) == "UP"
end

local function votes(sentinels)
    local up = 0
    for _, server in pairs(sentinels.servers) do
        if is_up(server) then up = up + 1 end
    end
    return up
end

-- An old process left by a reload keeps its sessions until they end, but it checks nothing any
-- more (HAProxy stops the checks of a stopping process), so it could not tell a demoted master:
-- it closes its sessions to the masters at once, and their clients reconnect to the new process.
local function stopping()
    return tonumber(core.get_info().Stopping) == 1
end

local function sweep()
    local old_process -- asked only when there are sessions
    for name, sentinels in pairs(core.backends) do
        local node = string.match(name, "^sentinels_name_(.+)$")
        local master = node and core.backends["redis_master_" .. node]
        local server = master and master.servers[node]
        local sessions = server and tonumber(server:get_stats().scur) or 0
        if sessions > 0 then
            if old_process == nil then old_process = stopping() end
            local up = votes(sentinels)
            if old_process then
                server:shut_sess()
                core.log(core.warning, string.format(
                    "redis-ha guard: HAProxy reloaded and this old process checks no more: %d session(s) to %s closed",
                    sessions, node))
            elseif up < majority then
                server:shut_sess()
                core.log(core.warning, string.format(
                    "redis-ha guard: %d sentinel(s) name %s, fewer than %d: its %d session(s) closed",
                    up, node, majority, sessions))
            end
        end
    end
end

core.register_task(function()
    while true do
        -- A failed sweep is logged; it must not end the guard.
        local ok, err = pcall(sweep)
        if not ok then core.log(core.err, "redis-ha guard: " .. tostring(err)) end
        core.msleep(interval_ms)
    end
end)
