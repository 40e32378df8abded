"""SRL (paper srl): RL training as a dataflow between separate worker types, on one machine.

    actor workers  --inference requests-->  policy worker  (batched forward pass, newest weights)
    actor workers  <--inference replies---  policy worker
    actor workers  --sample stream------->  trainer worker --push--> parameter service --pull--> policy worker

Modules: `streams` (messages and the pure batching / routing / staleness bookkeeping), `params`
(versioned shared-memory weights), `actor`, `policy` (the worker loops), `system` (starting and
stopping the workers), `trainer` (`kind: srl`, PQN under this dataflow).
"""
