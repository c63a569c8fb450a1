package tpcc

// Config is the size of a TPC-C population.
type Config struct {
	Warehouses int
	// Items is the number of items and of stock rows per warehouse
	// (100,000 in the specification).
	Items int
	// Customers is the number of customers per district, and of the
	// initial orders per district (3,000 in the specification).
	Customers int
}

// Districts per warehouse, fixed by the specification.
const Districts = 10

// Spec is the specification's population for w warehouses.
func Spec(w int) Config { return Config{Warehouses: w, Items: 100000, Customers: 3000} }

// Small is a population for tests: the same shape as Spec at a fraction of
// its size, so that the consistency conditions hold as they do at full size.
func Small(w int) Config { return Config{Warehouses: w, Items: 1000, Customers: 60} }

// undeliveredFrom is the first initial order id left undelivered (with a
// new_order row): the last 900 of 3,000 in the specification, the same
// proportion here.
func (c Config) undeliveredFrom() int { return c.Customers - c.Customers*900/3000 + 1 }

// historyAmount is each customer's initial payment (H_AMOUNT, C_YTD_PAYMENT).
const historyAmount = "10.00"

// warehouseYTD and districtYTD are the initial W_YTD and D_YTD: the sums of
// the initial history rows (consistency conditions 8 and 9).
func (c Config) districtYTD() string { return cents(int64(c.Customers) * 1000) }
func (c Config) warehouseYTD() string {
	return cents(int64(c.Customers) * 1000 * Districts)
}
