{#- Per (order, sku): units ordered on the current version vs gross units shipped and returned. -#}
{{ order_skus_reconciled() }}
