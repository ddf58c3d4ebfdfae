class IndexBig < ActiveRecord::Migration[6.1]
  def change
    # Rails' default: the migration runs in a transaction.
    add_index :big, :account, name: "big_account_idx"
  end
end
