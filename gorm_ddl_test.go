package pgshard_test

import (
	"strings"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormWidget is a GORM model of a table distributed by TenantID.
type gormWidget struct {
	TenantID int64 `gorm:"primaryKey;autoIncrement:false"`
	ID       int64 `gorm:"primaryKey;autoIncrement:false"`
	Name     string
}

func (gormWidget) TableName() string { return "widgets" }

// gormWidgetV2 is gormWidget with a new, indexed field.
type gormWidgetV2 struct {
	TenantID int64 `gorm:"primaryKey;autoIncrement:false"`
	ID       int64 `gorm:"primaryKey;autoIncrement:false"`
	Name     string
	Color    string `gorm:"index"`
}

func (gormWidgetV2) TableName() string { return "widgets" }

// TestGORMAutoMigrateDistributed: GORM's AutoMigrate of a model with a new
// indexed field adds the column and the index to a distributed table, on
// the template and every placement, and the new field is usable at once.
// On the old code AutoMigrate failed (ALTER TABLE refused, 0A000).
func TestGORMAutoMigrateDistributed(t *testing.T) {
	e := newEnv(t)
	gdb, err := gorm.Open(postgres.New(postgres.Config{DriverName: "pgshard", DSN: e.DSN}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	// Its Connector's pools and background goroutines end with the test:
	// later tests count the driver's goroutines.
	defer sqlDB.Close()
	if err := gdb.AutoMigrate(&gormWidget{}); err != nil {
		t.Fatalf("creating widgets: %v", err)
	}
	e.exec(`SELECT master_create_distributed_table('widgets', 'tenant_id')`)
	e.exec(`SELECT master_create_worker_shards('widgets', 4, 2)`)
	for i := int64(1); i <= 8; i++ {
		if err := gdb.Create(&gormWidget{TenantID: i, ID: 1, Name: "w"}).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := gdb.AutoMigrate(&gormWidgetV2{}); err != nil {
		t.Fatalf("AutoMigrate adding a column and an index: %v", err)
	}
	sh := e.distributedShapes()["widgets"]
	for _, want := range []string{"color text", "CREATE INDEX idx_widgets_color ON public.widgets USING btree (color)"} {
		if !strings.Contains(sh, want) {
			t.Fatalf("widgets after AutoMigrate: %s; want %q on the template and every placement", sh, want)
		}
	}
	// Again: nothing left to change.
	if err := gdb.AutoMigrate(&gormWidgetV2{}); err != nil {
		t.Fatalf("AutoMigrate again: %v", err)
	}
	if err := gdb.Create(&gormWidgetV2{TenantID: 3, ID: 2, Name: "v2", Color: "red"}).Error; err != nil {
		t.Fatal(err)
	}
	var got []gormWidgetV2
	if err := gdb.Where("color = ?", "red").Find(&got).Error; err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].TenantID != 3 || got[0].Name != "v2" {
		t.Fatalf("widgets with color red: %+v", got)
	}
	var n int64
	if err := gdb.Model(&gormWidgetV2{}).Where("color = ''").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d old rows have color '', want NULL", n)
	}
	e.assertReplicasIdentical("widgets")
}
