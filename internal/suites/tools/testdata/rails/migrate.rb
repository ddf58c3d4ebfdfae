# What `rails db:migrate` does, without a Rails application: ActiveRecord's
# migrator over the scenario's directory (MIGRATIONS), connected with
# DATABASE_URL. An error ends the script as it ends the rake task, with
# the exception's message on stderr.
require "active_record"

ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
ActiveRecord::Migration.verbose = true
context = ActiveRecord::MigrationContext.new(ENV.fetch("MIGRATIONS"), ActiveRecord::SchemaMigration)
begin
  context.migrate
rescue StandardError => e
  # rails db:migrate prints this, then the backtrace with --trace.
  warn "rails aborted!\n#{e.class}: #{e.message}"
  exit 1
end
