-- Argo CD health check for replication.cyrusrepl.io/ReplicationPair.
-- Install: resource.customizations.health.replication.cyrusrepl.io_ReplicationPair in
-- argocd-cm (see docs/gitops.md). Reads only status written by the cyrusrepl manager.
local hs = { status = "Progressing", message = "waiting for the cyrusrepl manager" }

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil
    or obj.status.observedGeneration < obj.metadata.generation then
  return hs
end

local stalled = condition("Stalled")
local ready = condition("Ready")
local splitBrain = condition("SplitBrainSuspected")
local seeding = condition("Seeding")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
if ready == nil then
  return hs
end
if ready.status == "True" and ready.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = ready.message or "suspended"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "replicating"
  -- The replica is being filled: healthy (the pod works), and the message says so.
  if seeding ~= nil and seeding.status == "True" then
    hs.message = "seeding the replica: " .. (seeding.message or seeding.reason)
  end
  -- Mail is kept, so the pair is healthy; the message says a person should look.
  if splitBrain ~= nil and splitBrain.status == "True" then
    hs.message = "split-brain suspected: " .. (splitBrain.message or splitBrain.reason)
  end
  return hs
end
if ready.reason == "ReplicatorFailing" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = ready.reason .. ": " .. (ready.message or "")
return hs
