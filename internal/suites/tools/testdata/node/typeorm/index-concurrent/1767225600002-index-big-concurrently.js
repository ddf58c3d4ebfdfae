module.exports = class IndexBigConcurrently1767225600002 {
  name = 'IndexBigConcurrently1767225600002';
  // TypeORM's way to run a migration outside a transaction (with migration:run -t each).
  transaction = false;


  async up(queryRunner) {
    await queryRunner.query(`CREATE INDEX CONCURRENTLY "big_account_cidx" ON "big" ("account") `);
  }

  async down(queryRunner) {
    await queryRunner.query(`DROP INDEX CONCURRENTLY "public"."big_account_cidx"`);
  }
};
