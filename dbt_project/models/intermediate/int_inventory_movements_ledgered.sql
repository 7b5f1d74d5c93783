{#- The running on-hand of every (sku, warehouse_id), in (occurred_at, movement_id) order. -#}
{{ inventory_movements_ledgered() }}
