{#- Per order: succeeded payment sums in the order currency, first capture in any currency, and the
    payment-side facts the rules need, with the first
    foreign-currency event (lowest payment_id) that CURRENCY_MISMATCH's detail quotes. One row per order that has any payment event. -#}
{{ order_payments_summed() }}
