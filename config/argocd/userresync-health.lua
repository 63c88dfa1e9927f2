-- Argo CD health check for replication.cyrusrepl.io/UserResync.
-- Install: resource.customizations.health.replication.cyrusrepl.io_UserResync in
-- argocd-cm (see docs/gitops.md). Reads only status written by the cyrusrepl manager.
local hs = { status = "Progressing", message = "waiting for the cyrusrepl manager" }

if obj.status == nil or obj.status.phase == nil then
  return hs
end

local ready = nil
local stalled = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then ready = c end
    if c.type == "Stalled" then stalled = c end
  end
end

local phase = obj.status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif stalled ~= nil and stalled.status == "True" then
  -- Pending or Running, but waiting for a person (e.g. a missing Secret).
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
else
  hs.status = "Progressing"
end
hs.message = phase
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = phase .. ": " .. ready.message
end
return hs
