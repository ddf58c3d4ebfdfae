class ValidateCheckAccount < ActiveRecord::Migration[6.1]
  def change
    validate_check_constraint :big, name: "big_account_nonnegative"
  end
end
