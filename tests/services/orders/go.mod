module perflab.test/orders

go 1.24
