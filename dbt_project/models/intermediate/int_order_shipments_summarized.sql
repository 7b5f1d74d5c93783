{#- Per order: shipment and return totals and the per-sku fulfillment findings, with the units of the
    first sku each finding names (its detail sentence quotes them). -#}
{{ order_shipments_summarized() }}
