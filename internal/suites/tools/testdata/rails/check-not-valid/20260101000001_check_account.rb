class CheckAccount < ActiveRecord::Migration[6.1]
  def change
    # What the refusal of add-check-constraint tells a Rails user to write.
    add_check_constraint :big, "account >= 0", name: "big_account_nonnegative", validate: false
  end
end
