-- v7: the dispatcher fails deliveries left pending for endpoints deleted lately
-- (ops::webhooks::fail_orphans); it finds those endpoints by this index.
CREATE INDEX webhook_endpoints_deleted ON webhook_endpoints (deleted_at) WHERE deleted_at IS NOT NULL;
