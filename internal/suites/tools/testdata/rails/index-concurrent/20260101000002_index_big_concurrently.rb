class IndexBigConcurrently < ActiveRecord::Migration[6.1]
  # Rails' way to run a migration outside a transaction.
  disable_ddl_transaction!

  def change
    add_index :big, :account, name: "big_account_cidx", algorithm: :concurrently
  end
end
